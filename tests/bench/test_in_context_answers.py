"""bench/knowledge_recipes.py --in-context: the base answers the night's span questions with
the span's sentence in its prompt, and only answers that state the span are kept."""


def test_answers_are_asked_after_their_sentence_and_kept_only_when_they_state_the_span():
    from bench.knowledge_recipes import in_context_answers

    doc = {
        "title": "Orrin Pulse X2 goes on sale",
        "text": "The Orrin Pulse X2 costs $649 in its base model. "
        "Its battery holds 5,200 mAh, the company said on Monday.",
        "language": "en",
    }
    prompts: list[str] = []

    def answer(asked: list[str]) -> list[str]:
        prompts.extend(asked)
        # right about the price (then going on alone), wrong about everything else
        right = "The base model costs $649.\n\nIt has a 6,000 mAh battery."
        return [
            right if "$649" in p.split("\n\n")[0] and "how much" in p.lower() else "It is a phone."
            for p in asked
        ]

    kept = in_context_answers([doc], answer, max_sentences=12)
    assert prompts and all("\n\n" in p for p in prompts)
    sentence, question = prompts[0].split("\n\n")
    assert sentence.endswith(".") and question.endswith("?")
    assert kept and all(text == "The base model costs $649." for _, _, text in kept)
    assert all("$649" in context for _, context, _ in kept)
    assert len(kept) < len(prompts)  # "It is a phone." states no span: left out
