"""Questions asked as a user asks them: the answer a model writes is checked the way a person
would read it (numbers with or without separators, any case), and never credited for a
different number that merely starts the same."""

from __future__ import annotations

import pytest

from freshlm.answer_match import answer_matches, normalize
from freshlm.evaluation.answers import (
    PLAIN_TEMPLATE,
    check_answers,
    generate_answers,
    question_prompt,
    ranking_context,
)
from tests.freshlm.evaluation import tiny_models


@pytest.mark.parametrize(
    ("expected", "written", "matches"),
    [
        ("$649", "The base model costs $649.", True),
        ("5,200 mAh", "It has a 5200 mAh battery.", True),
        ("5,200 mAh", "The battery capacity of the Orrin Pulse X2 is 5,200mAh.", True),
        ("12 GB", "It has 128GB of storage.", False),
        ("November 13", "It goes on sale on november 13, 2026.", True),
        ("2.1.4", "Install firmware 2.1.4, then restart.", True),
        ("Ember Copper", "The ember-copper model.", True),
        ("파도잠", "‘파도잠’은 짧은 낮잠이라는 뜻이에요.", True),
        ("30 months", "Every phone carries a 30-month warranty.", True),
        ("30-month", "The warranty lasts 30 months.", True),
        ("182 grams", "It weighs 182 gram.", True),
        ("30 months", "The warranty lasts 3 months.", False),
        ("12 minutes", "Buses leave every 12 miles.", False),
        ("$64", "It costs $649.", False),
        ("2.1", "Install firmware 2.1.4.", False),
        ("$2.40", "A single fare is $2.4.", False),
        ("Ondra", "The Ondravia river.", False),
        ("glued to your phone", "Someone so glued to their phone that …", True),
        ("glued to your phone", "Being glued to one's phone.", True),
        ("glued to your phone", "Glued to the TV.", False),
        ("38%", "It is not said.", False),
        ("", "anything", False),
    ],
)
def test_an_answer_counts_when_it_states_the_expected_one(expected, written, matches):
    assert answer_matches(expected, written) is matches


def test_normalize_keeps_words_numbers_and_currency():
    assert normalize("  It's $1,299.50 — (in TOTAL)!") == "it s $1299.50 in total"
    assert normalize("A 30-month warranty, 30 Months") == "a 30 month warranty 30 month"


class _ChatTokenizer:
    chat_template = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return f"<|user|>{messages[0]['content']}<|assistant|>"


def test_the_question_goes_in_the_chat_template_when_there_is_one():
    assert question_prompt(_ChatTokenizer(), "Who?") == "<|user|>Who?<|assistant|>"
    tokenizer = tiny_models.tokenizer()  # a byte-level BPE without a chat template
    assert question_prompt(tokenizer, "Who?") == PLAIN_TEMPLATE.format(question="Who?")


def test_generation_answers_every_question_in_order_within_the_context():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_models.model_dirs()[1]
    model = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    long_question = "Which river flows through Tessford? " * 40  # far past the 64 positions
    questions = ["How much does the Pulse X2 cost?", long_question, "Who opened the market?"]
    texts = generate_answers(model, tokenizer, questions, max_new_tokens=8, batch_size=2)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    # Greedy: the same question alone gets the same answer as in a padded batch.
    assert generate_answers(model, tokenizer, questions[:1], max_new_tokens=8) == texts[:1]
    assert tokenizer.padding_side == "right"  # restored
    checked = check_answers(["a", "b", "c"], ["$649", "Ondra", "Ada Brook"], texts)
    assert [c.item_id for c in checked] == ["a", "b", "c"]
    assert [c.correct for c in checked] == [
        answer_matches(e, t) for e, t in zip(["$649", "Ondra", "Ada Brook"], texts, strict=True)
    ]


def test_a_fact_is_ranked_in_the_chat_template_as_the_user_asks_it():
    context = "Question: How much does the Pulse X2 cost?\nAnswer:"
    assert ranking_context(_ChatTokenizer(), context) == (
        "<|user|>How much does the Pulse X2 cost?<|assistant|>"
    )
    # A model without a template, and a context that is not a question, keep theirs.
    assert ranking_context(tiny_models.tokenizer(), context) == context
    cloze = "The Pulse X2 costs"
    assert ranking_context(_ChatTokenizer(), cloze) == cloze
