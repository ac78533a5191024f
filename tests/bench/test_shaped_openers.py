"""bench/knowledge_recipes.py --rehearse-shaped: the night's question openings, names cut off."""

from bench.knowledge_recipes import shaped_openers


def test_each_wh_question_is_cut_before_its_first_name_or_figure():
    assert shaped_openers(
        [
            "What is the battery capacity of the Orrin Pulse X2?",
            "How many megapixels does Pulse X2's main camera have?",
            "On what date does the Orrin Pulse X2 go on sale in stores?",
            "How much did the 2024 model cost?",
        ]
    ) == [
        "What is the battery capacity of the",
        "How many megapixels does",
        "On what date does the",
        "How much did the",
    ]


def test_in_place_questions_nameless_ones_and_repeats_give_no_opening():
    assert shaped_openers(
        [
            "Pulse X2: The main camera has how many megapixels?",  # starts with its subject
            "What is it?",  # no name to cut before: nothing shaped to keep
            "Who or what did Ondra University open on Monday?",
            "Who or what did Tessford Transit say?",
            "Who Orrin?",  # one word before the name
        ]
    ) == ["Who or what did"]


def test_turns_are_written_once_and_read_back_from_the_cache(tmp_path):
    from bench.knowledge_recipes import cached_turns
    from training.rehearsal import Rehearsal

    turn = Rehearsal("Who wrote Hamlet?", "William Shakespeare wrote Hamlet.")
    calls = []

    def write():
        calls.append(1)
        return [turn]

    path = tmp_path / "shaped-1-abc.jsonl"
    assert cached_turns(path, write) == [turn]
    assert cached_turns(path, write) == [turn]  # read back from the file
    assert calls == [1]
