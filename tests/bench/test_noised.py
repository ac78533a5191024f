"""bench/knowledge_recipes.py --noise: noised copies of a span question (EDA)."""

from bench.knowledge_recipes import noised


def test_noised_copies_are_distinct_shorter_or_reordered_and_the_same_every_run():
    question = "How much does Pulse X2's base model with 128 GB of storage cost?"
    copies = noised(question, 3)
    assert len(copies) == 3 and len(set(copies)) == 3 and question not in copies
    words = sorted(question.rstrip("?").split())
    for copy in copies:
        assert copy.startswith("How ") and copy.endswith("?")
        kept = copy.rstrip("?").split()
        assert 3 <= len(kept) <= len(words)
        assert all(kept.count(w) <= words.count(w) for w in kept)  # only the question's words
    assert noised(question, 3) == copies
    assert noised("Who won?", 2) == []  # too short to drop a word from and stay a question
