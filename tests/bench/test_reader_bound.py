"""bench/reader_bound.py: the page a reader is given for a question, and the far control's
question (bench.knowledge_recipes.farthest_question, which it shares with the fast loop)."""

DOCS = [
    {"title": "Orrin cuts prices", "text": "Orrin Labs said the Pulse X2 base model costs $649."},
    {"title": "Lantern Festival", "text": "The Tessford Lantern Festival is on November 21."},
    {"title": "Pulse X2 review", "text": "How much battery does the Pulse X2 have? 5,200 mAh, "
     "and a 30-month warranty; Orrin Labs also sells a $59 battery swap."},
]  # fmt: skip


def test_retrieval_picks_the_page_sharing_the_rarest_question_words():
    from bench.reader_bound import retrieve

    assert retrieve("When is the Tessford Lantern Festival?", DOCS) is DOCS[1]
    # "Pulse X2" is on two pages; "battery" on one of them only
    assert retrieve("What battery does the Pulse X2 have?", DOCS) is DOCS[2]


def test_gold_reads_a_page_that_states_the_answer_where_retrieval_misses_it():
    from bench.reader_bound import reading

    question = "How much does the Pulse X2 cost?"  # the review shares more of its words
    assert "$649" not in reading(question, "$649", DOCS, "retrieved")
    gold = reading(question, "$649", DOCS, "gold")
    assert gold == f"Orrin cuts prices\n{DOCS[0]['text']}\n\nQuestion: {question}"
    assert reading(question, "$649", DOCS, "none") == question
    night = reading(question, "$649", DOCS, "night")
    assert all(d["text"] in night for d in DOCS) and night.endswith(f"Question: {question}")


def test_far_control_asks_the_question_sharing_fewest_words():
    from bench.knowledge_recipes import farthest_question as farthest

    questions = [
        "How much does the Pulse X2 cost?",
        "What battery does the Pulse X2 have?",
        "When is the Lantern Festival?",
    ]
    assert farthest(questions, 0) == 2 and farthest(questions, 2) == 0


def test_a_reader_of_units_gets_the_sentences_sharing_the_rarest_question_words():
    from bench.reader_bound import reading, top_units, units

    sentences = units(DOCS, "sentences")
    assert "Lantern Festival: The Tessford Lantern Festival is on November 21." in sentences
    best = top_units("When is the Tessford Lantern Festival?", sentences, k=1)
    assert best == ["Lantern Festival: The Tessford Lantern Festival is on November 21."]
    turn = reading("When is the Tessford Lantern Festival?", "November 21", DOCS, "sentences")
    assert turn.endswith("\n\nQuestion: When is the Tessford Lantern Festival?")
    assert "November 21" in turn.partition("\n\nQuestion:")[0]
    turns = units(DOCS, "qa")
    assert turns and all(t.startswith("Q: ") and "\nA: " in t for t in turns)
    assert any(t.endswith("\nA: $649") for t in turns)
