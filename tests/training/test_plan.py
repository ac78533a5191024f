"""freshlm_train's Params and triggering events become a checked TrainingPlan, or a PlanError that
names the Param."""

from __future__ import annotations

import json

import pytest

from freshlm.registry import PRODUCTION, move_alias
from freshlm.settings import Settings, SettingsError
from freshlm.store import open_store
from tests.training.test_trainset import publish_dataset
from training.backends import candidate_event
from training.plan import PlanError, TrainingPlan, datasets_from_events, plan_training

BASE = "b0" * 16
OTHER = "c1" * 16


def _publish_model(store, version_id: str) -> None:
    with store.publisher(f"models/{version_id}", kind="model") as pub:
        pub.write_bytes("config.json", b"{}")
        pub.set_manifest_fields(version_id=version_id, lineage={"kind": "bootstrap"})


@pytest.fixture
def store(tmp_path):
    store = open_store((tmp_path / "store").as_uri())
    _publish_model(store, BASE)
    _publish_model(store, OTHER)
    move_alias(store, PRODUCTION, BASE, actor="test", reason="first")
    return store


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env({"FRESHLM_HOME": str(tmp_path), "FRESHLM_TRAIN_GPUS": "2"})


def test_an_asset_triggered_run_trains_the_announced_dataset_from_production(store, settings):
    day1 = publish_dataset(store, 1)
    day2 = publish_dataset(store, 2, parents=[day1])
    plan = plan_training({}, [{"dataset_id": day2}], store=store, settings=settings)
    assert plan.trigger == "asset"
    assert plan.config.datasets == (day2,)
    assert plan.base_version == BASE and plan.baseline_version == BASE
    assert plan.backend == "local" and plan.gpus == 2 and plan.config.num_ranks == 2
    assert plan.config.epochs == settings.train_epochs
    assert plan.config.learning_rate == settings.train_learning_rate
    assert plan.config.store_uri == store.root_uri
    # The plan survives the XCom round trip unchanged.
    assert TrainingPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan


def test_manual_params_win_and_an_empty_run_takes_the_newest_dataset(store, settings):
    day1 = publish_dataset(store, 1)
    day2 = publish_dataset(store, 2, parents=[day1])
    plan = plan_training(
        {
            "datasets": [day1],
            "base_version": OTHER,
            "mode": "lora",
            "epochs": 2,
            "learning_rate": 3e-4,
            "replay_ratio": 0.1,
            "max_steps": 7,
            "gpus": 1,
            "micro_batch_size": 32,
            "augment": True,
            "rivals": 1,
            "appositions": True,
        },
        [{"dataset_id": day2}],
        store=store,
        settings=settings,
    )
    assert plan.trigger == "manual" and plan.config.datasets == (day1,)
    assert plan.base_version == OTHER and plan.baseline_version == BASE
    assert (plan.config.mode, plan.config.epochs, plan.config.max_steps) == ("lora", 2, 7)
    assert plan.config.replay_ratio == 0.1 and plan.config.num_ranks == 1
    assert plan.config.micro_batch_size == 32
    assert plan.config.augment and plan.config.rivals == 1 and plan.config.appositions

    newest = plan_training({}, [], store=store, settings=settings)
    assert newest.config.datasets == (day2,) and newest.trigger == "manual"


def test_a_gpu_deployment_sets_the_micro_batch_once_and_a_run_can_still_change_it(store, tmp_path):
    day1 = publish_dataset(store, 1)
    gpu = Settings.from_env({"FRESHLM_HOME": str(tmp_path), "FRESHLM_TRAIN_MICRO_BATCH": "64"})
    assert (
        plan_training({}, [{"dataset_id": day1}], store=store, settings=gpu).config.micro_batch_size
        == 64
    )
    run = plan_training({"micro_batch_size": 16}, [], store=store, settings=gpu)
    assert run.config.micro_batch_size == 16
    with pytest.raises(SettingsError, match="FRESHLM_TRAIN_MICRO_BATCH='0'"):
        Settings.from_env({"FRESHLM_TRAIN_MICRO_BATCH": "0"})


@pytest.mark.parametrize(
    ("params", "events", "named"),
    [
        ({"datasets": ["f" * 32]}, [], "datasets: 'ffff"),
        ({"base_version": "d" * 32}, [], "base_version:"),
        ({"base_version": "previous"}, [], "base_version: the alias 'previous' is not set"),
        ({"backend": "slurm"}, [], "backend:"),
        ({"mode": "qlora"}, [], "mode:"),
        ({"gpus": 0}, [], "gpus:"),
        ({"learning_rate": -1}, [], "learning_rate = -1"),
        ({"replay_ratio": 1.5}, [], "replay_ratio = 1.5"),
        ({"micro_batch_size": 0}, [], "micro_batch_size = 0"),
        ({"rivals": -2}, [], "rivals = -2"),
        ({}, [{"uri": "x"}], "has no dataset_id"),
    ],
)
def test_bad_params_and_events_name_what_was_wrong(store, settings, params, events, named):
    publish_dataset(store, 1)
    with pytest.raises(PlanError) as err:
        plan_training(params, events, store=store, settings=settings)
    assert named in str(err.value)


def test_nothing_published_or_no_production_says_what_to_run_first(tmp_path, settings):
    empty = open_store((tmp_path / "empty").as_uri())
    with pytest.raises(PlanError, match="run freshlm_crawl and freshlm_curate first"):
        plan_training({}, [], store=empty, settings=settings)
    day1 = publish_dataset(empty, 1)
    with pytest.raises(PlanError, match="bootstrap the base model first"):
        plan_training({"datasets": [day1]}, [], store=empty, settings=settings)


def test_events_are_deduplicated_in_order():
    events = [{"dataset_id": "a"}, {"dataset_id": "b"}, {"dataset_id": "a"}]
    assert datasets_from_events(events) == ["a", "b"]


def test_the_candidate_event_names_the_version_its_inputs_and_the_baseline(store, settings):
    day1 = publish_dataset(store, 1)
    plan = plan_training({}, [{"dataset_id": day1}], store=store, settings=settings)
    event = candidate_event(
        plan,
        {
            "version_id": "e" * 32,
            "uri": store.uri_for("models/" + "e" * 32),
            "trainset_id": "t1",
            "metrics": {"train_loss": 2.5, "wall_time_s": 12.0},
        },
    )
    assert event["version_id"] == "e" * 32 and event["baseline_version"] == BASE
    assert event["dataset_ids"] == [day1] and event["trainset_id"] == "t1"
    assert event["train_loss"] == 2.5 and event["backend"] == "local"


def test_a_small_scheduled_night_is_deferred_and_trained_with_the_next(store, tmp_path):
    from freshlm.artifacts import read_published_dataset
    from training.plan import TooLittleNewData

    day1 = publish_dataset(store, 1)
    day2 = publish_dataset(store, 2, parents=[day1])
    tokens = [read_published_dataset(store, d).fields["tokens"] for d in (day1, day2)]
    settings = Settings.from_env(
        {"FRESHLM_HOME": str(tmp_path), "FRESHLM_TRAIN_MIN_NEW_TOKENS": str(tokens[0] + 1)}
    )
    with pytest.raises(TooLittleNewData, match=f"hold {tokens[0]} tokens.*{day1}"):
        plan_training({}, [{"dataset_id": day1}], store=store, settings=settings)

    # The next scheduled run trains both nights, the deferred one first.
    plan = plan_training({}, [{"dataset_id": day2}], store=store, settings=settings)
    assert plan.config.datasets == (day1, day2)
    # A run by hand trains what it is given, whatever its size.
    manual = plan_training({"datasets": [day1]}, [], store=store, settings=settings)
    assert manual.config.datasets == (day1,)


def test_a_deferred_dataset_already_in_productions_lineage_is_not_trained_again(store, tmp_path):
    from freshlm.registry import Lineage, publish_version
    from training.plan import TooLittleNewData

    day1 = publish_dataset(store, 1)
    day2 = publish_dataset(store, 2, parents=[day1])
    settings = Settings.from_env(
        {"FRESHLM_HOME": str(tmp_path), "FRESHLM_TRAIN_MIN_NEW_TOKENS": "1000000"}
    )
    with pytest.raises(TooLittleNewData):
        plan_training({}, [{"dataset_id": day1}], store=store, settings=settings)
    # A run by hand trained day 1 and was promoted.
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"weights")
    (model_dir / "tokenizer.json").write_text("{}")
    trained, _ = publish_version(
        store, model_dir, lineage=Lineage(kind="finetune", parent_version=BASE, dataset_ids=[day1])
    )
    move_alias(store, PRODUCTION, trained.version_id, actor="test", reason="by hand")
    settings = Settings.from_env({"FRESHLM_HOME": str(tmp_path)})
    plan = plan_training({}, [{"dataset_id": day2}], store=store, settings=settings)
    assert plan.config.datasets == (day2,)
