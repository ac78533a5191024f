"""The scorer: choice log-likelihoods against a hand-written forward pass, the BPE boundary,
batching, byte-length normalization and perplexity over sliding windows."""

from __future__ import annotations

import math

import pytest
import torch

from freshlm.evaluation.items import Item
from freshlm.evaluation.scoring import CausalLMScorer, select_choice, torch_threads
from tests.freshlm.evaluation import tiny_models


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def model():
    return tiny_models.baseline_model()


@pytest.fixture(scope="module")
def tok():
    return tiny_models.tokenizer()


def make_item(context: str, choices: tuple[str, ...], answer: int = 0, group: str = "new") -> Item:
    return Item.create(
        kind="cloze",
        group=group,
        span_type="entity",
        context=context,
        choices=choices,
        answer_index=answer,
        dataset_id=None,
        doc_id=None,
        language="en",
        source="tests",
    )


def manual_logprob(model, tok, context: str, choice: str) -> tuple[float, int]:
    """Forward ``<bos> context choice`` once and sum the log-probabilities of the tokens after
    the ones the context alone tokenizes to."""
    ctx = tok(context, add_special_tokens=False)["input_ids"]
    full = tok(f"{context} {choice}", add_special_tokens=False)["input_ids"]
    shared = 0
    while shared < min(len(ctx), len(full)) and ctx[shared] == full[shared]:
        shared += 1
    seq = [tok.bos_token_id, *full]
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    total = sum(float(logprobs[i - 1, seq[i]]) for i in range(1 + shared, len(seq)))
    return total, len(seq) - 1 - shared


@pytest.mark.parametrize(
    "context",
    [
        "The Greyling Bridge opened in",
        "Price of the Pulse X2: ",  # trailing space: the boundary token differs
        "해온 항구 도시의 자매 도시는",
    ],
)
def test_choice_scores_match_a_manual_forward_pass(model, tok, context):
    scorer = CausalLMScorer(model, tok, batch_size=4)
    choices = ("1931", "$649", "테스퍼드입니다")
    scores = scorer.score_choices([(context, c) for c in choices])
    for choice, score in zip(choices, scores, strict=True):
        expected, tokens = manual_logprob(model, tok, context, choice)
        assert score.tokens == tokens >= 1
        assert score.logprob == pytest.approx(expected, abs=1e-4)
        assert score.bytes == len(choice.encode("utf-8"))
    (result,) = scorer.rank_items([make_item(context, choices)])
    assert result.logprobs == pytest.approx([s.logprob for s in scores], abs=1e-6)
    assert result.chosen == select_choice(result.logprobs, result.bytes)
    assert result.correct == (result.chosen == 0)


def test_batched_and_unbatched_scores_agree(model, tok):
    items = [
        make_item("The Tessford Courier is the oldest", ("newspaper", "bridge", "phone")),
        make_item("Orrin Labs launched the", ("Pulse X2 phone in Tessford", "market"), 1),
        make_item("Mayor Ada Brook opened the new harbour", ("market", "paper", "river")),
        make_item("A", ("b", "c")),
        make_item("The festival was postponed to", ("November 28", "November 21"), group="old"),
        make_item("해온 항구 도시의", ("자매", "도시")),
    ]
    one = CausalLMScorer(model, tok, batch_size=1).rank_items(items)
    many = CausalLMScorer(model, tok, batch_size=5).rank_items(items)
    for a, b in zip(one, many, strict=True):
        assert a.item_id == b.item_id and a.chosen == b.chosen and a.tokens == b.tokens
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert [r.group for r in one] == [i.group for i in items]


def test_length_normalization_is_per_byte():
    # Choice 0 is likelier in total, choice 1 per byte: acc would pick 0, acc_norm picks 1.
    assert select_choice([-6.0, -9.0], [3, 9]) == 1
    assert select_choice([-6.0, -9.0], [9, 9]) == 0
    assert select_choice([-2.0, -2.0], [4, 4]) == 0  # ties go to the lowest index
    with pytest.raises(ValueError):
        select_choice([-1.0], [1, 2])


def test_rank_items_prefers_the_choice_with_the_best_per_byte_score(model, tok, monkeypatch):
    """A constructed case: a long choice with a lower total but a better per-byte score."""
    scorer = CausalLMScorer(model, tok)
    item = make_item("Tessford is a harbour town on the", ("river Ondra in the Vell valley", "sea"))
    fake = {"river Ondra in the Vell valley": -20.0, "sea": -5.0}  # per byte: -0.65 vs -1.25

    def score_choices(pairs):
        real = CausalLMScorer.score_choices(scorer, pairs)
        return [
            type(s)(fake[choice], s.tokens, s.bytes, False)
            for s, (_, choice) in zip(real, pairs, strict=True)
        ]

    monkeypatch.setattr(scorer, "score_choices", score_choices)
    (result,) = scorer.rank_items([item])
    assert result.bytes == (30, 3)
    assert result.chosen == 0 and result.correct
    assert result.chosen_unnormalized == 1


def test_perplexity_is_exp_of_the_mean_token_nll(model, tok):
    texts = tiny_models.OLD_TEXTS[:3]
    total, count = 0.0, 0
    for text in texts:
        seq = [tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]
        with torch.no_grad():
            logits = model(torch.tensor([seq])).logits[0, :-1].float()
        total += float(
            torch.nn.functional.cross_entropy(logits, torch.tensor(seq[1:]), reduction="sum")
        )
        count += len(seq) - 1
    result = CausalLMScorer(model, tok, batch_size=2).perplexity(texts)
    assert result.tokens == count and result.texts == 3 and result.windows == 3
    assert result.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)
    assert result.mean_nll == pytest.approx(total / count, rel=1e-5)
    empty = CausalLMScorer(model, tok).perplexity(["", ""])
    assert empty.perplexity is None and empty.tokens == 0


def test_long_texts_slide_a_window_and_score_each_token_once(model, tok):
    text = " ".join(tiny_models.ALL_TEXTS)
    n = len(tok(text, add_special_tokens=False)["input_ids"])
    assert n > 100
    small = CausalLMScorer(model, tok, max_length=16, batch_size=8)
    result = small.perplexity([text])
    assert result.tokens == n
    # Windows of 17 ids (16 fed, the last only predicted), each after the first keeping 8 ids
    # of the one before as context and scoring 9 new ones: ceil((n + 1 - 17) / 9) + 1 of them.
    assert result.windows == math.ceil((n + 1 - 17) / 9) + 1
    assert math.isfinite(result.perplexity)
    # A window as long as the model's context scores the same tokens with more context.
    full = CausalLMScorer(model, tok).perplexity([text])
    assert full.tokens == n and full.windows > 1
    (logprob,) = small.text_logprobs([text])
    assert logprob.tokens == n and logprob.logprob == pytest.approx(-result.nll, rel=1e-6)


def test_from_pretrained_loads_a_model_folder(tok):
    baseline_dir, _ = tiny_models.model_dirs()
    scorer = CausalLMScorer.from_pretrained(baseline_dir, batch_size=3, device="cpu")
    assert scorer.max_length == tiny_models.CONTEXT and scorer.start_id == tok.bos_token_id
    direct = CausalLMScorer(tiny_models.baseline_model(), tok)
    texts = tiny_models.NEW_TEXTS
    assert [s.logprob for s in scorer.text_logprobs(texts)] == pytest.approx(
        [s.logprob for s in direct.text_logprobs(texts)], abs=1e-4
    )
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        CausalLMScorer.from_pretrained(baseline_dir / "missing")


def test_continuations_on_a_shared_prefix_score_as_whole_requests(model, tok):
    """Each distinct context runs once and its choices reuse its cache: the same numbers as
    scoring every choice with its whole context, whatever the batch and however many tokens a
    choice has."""
    scorer = CausalLMScorer(model, tok, batch_size=2)
    pairs = [
        (context, choice)
        for context in ("Tessford", "The Greyling Bridge in Tessford opened in the year")
        for choice in ("1931", "Ondra river valley festival", "$649", "해온")
    ]
    contexts = {c: tok(c, add_special_tokens=False)["input_ids"] for c, _ in pairs}
    requests = []
    for context, choice in pairs:
        full = tok(f"{context} {choice}", add_special_tokens=False)["input_ids"]
        shared = 0
        while contexts[context][shared : shared + 1] == full[shared : shared + 1]:
            shared += 1
        requests.append(([tok.bos_token_id, *full], len(full) - shared))
    assert max(n for _, n in requests) > 1
    whole = scorer.score_requests(requests)
    shared_prefix = scorer.score_continuations(requests)
    for a, b in zip(whole, shared_prefix, strict=True):
        assert a.tokens == b.tokens and a.greedy == b.greedy
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_choices_of_a_context_longer_than_the_window_score_without_error(model, tok):
    """A retention passage cut to the window, with choices of different lengths in one batch:
    the pads after the shorter choices must not run past the model's positions."""
    scorer = CausalLMScorer(model, tok, batch_size=4)
    context = " ".join(["The Greyling Bridge in Tessford opened in 1962."] * 200)
    item = make_item(context, ("1931", "the year the Ondra river flooded the lower town"))
    (result,) = scorer.rank_items([item])
    for choice, logprob in zip(item.choices, result.logprobs, strict=True):
        cut = [tok.bos_token_id, *tok(f"{context} {choice}", add_special_tokens=False)["input_ids"]]
        cut = cut[-(scorer.max_length + 1) :]
        n = len(tok(f"{context} {choice}", add_special_tokens=False)["input_ids"]) - len(
            tok(context, add_special_tokens=False)["input_ids"]
        )
        (whole,) = scorer.score_requests([(cut, n)])
        assert logprob == pytest.approx(whole.logprob, abs=1e-4)


def test_rank_items_scores_the_contexts_it_is_given_under_the_items_ids(model, tok):
    """The evaluator ranks fact items in the model's chat template: the given contexts are
    scored, and the results keep the items' ids (their pools and memo keys)."""
    scorer = CausalLMScorer(model, tok)
    item = make_item("Question: Where is Tessford?\nAnswer:", ("on the river Ondra", "at sea"))
    asked = "User: Where is Tessford?\nAssistant:"
    (result,) = scorer.rank_items([item], contexts=[asked])
    expected = [manual_logprob(model, tok, asked, c)[0] for c in item.choices]
    assert result.item_id == item.id
    assert result.logprobs == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match="2 contexts for 1 items"):
        scorer.rank_items([item], contexts=[asked, asked])
