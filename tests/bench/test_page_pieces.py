"""bench/knowledge_recipes.py --pages and --replay: the pages the product trains beside the night's
derived texts, as the fast loop's plain texts."""

from argparse import Namespace


def test_each_document_is_cut_into_pieces_and_replay_fills_its_share(tmp_path):
    from transformers import AutoTokenizer

    from bench.knowledge_recipes import page_pieces
    from freshlm.store import open_store
    from tests.training.test_trainset import make_tiny_model, publish_dataset

    tokenizer = AutoTokenizer.from_pretrained(str(make_tiny_model(tmp_path / "model")))
    store = open_store((tmp_path / "store").as_uri())
    base = {"base_corpus_dataset": publish_dataset(store, 3, n_docs=60)}
    doc = {"title": "Harbor", "text": "The ferry leaves at noon. " * 30}
    derived = ["Question: When does the ferry leave?\nAnswer: At noon."] * 20

    pages = page_pieces(tokenizer, [doc], derived, store, base, Namespace(pages=16, replay=0.0))
    ids = tokenizer(f"Harbor\n\n{doc['text']}", add_special_tokens=False)["input_ids"]
    assert len(pages) == -(-len(ids) // 16) and pages[0].startswith("Harbor\n\nThe ferry")
    assert "".join(pages) == tokenizer.decode(ids)  # the whole page, in order, nothing twice

    both = page_pieces(tokenizer, [doc], derived, store, base, Namespace(pages=16, replay=0.5))
    replayed = both[len(pages) :]
    assert both[: len(pages)] == pages and replayed
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in derived + pages)
    assert 16 * len(replayed) >= tokens  # half of all: as many as the night's own, or a piece more
    assert 16 * (len(replayed) - 16) < tokens  # ...and not a whole document's pieces beyond
    none = page_pieces(tokenizer, [doc], derived, store, base, Namespace(pages=0, replay=0.0))
    assert none == []
