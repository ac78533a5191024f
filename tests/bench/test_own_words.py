from bench.own_words import figure_place, own_words_answer


def test_the_documents_figure_takes_the_place_of_the_models_own():
    question = "What is the battery capacity of the Orrin Pulse X2?"
    said = "The battery capacity of the Orrin Pulse X2 is 220 Ah. It lasts a day."
    assert (
        own_words_answer(question, "5,200 mAh", "number", said)
        == "The battery capacity of the Orrin Pulse X2 is 5,200 mAh."
    )


def test_a_price_a_date_and_a_month_name_each_mark_their_place():
    assert (
        own_words_answer("How much is it?", "$649", "price", "It costs about $1,000 in stores.")
        == "It costs about $649."
    )
    assert (
        own_words_answer("When does it ship?", "November 13", "date", "It ships in March 2027.")
        == "It ships in November 13."
    )


def test_digits_the_question_already_has_are_not_the_figure():
    question = "How many cores does the Vela 9 have?"
    said = "The Vela 9 has 4 cores."
    assert figure_place(question, said, "number") == said.index("4 cores")


def test_no_place_for_names_for_answers_without_a_figure_or_opening():
    q = "Who leads Orrin?"
    assert own_words_answer(q, "Mara Voss", "entity", "Orrin is led by John Smith.") is None
    # the first sentence has no figure: the one in the next is about something else
    said = "The Pulse X2 is a high-end phone. It sold 3 million units."
    assert own_words_answer("How much does it cost?", "$649", "price", said) is None
    # the answer is the figure alone: the span turn already says that
    assert own_words_answer("How much does it cost?", "$649", "price", "$1,000.") is None
