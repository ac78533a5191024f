"""Settings: defaults make the embedded mode work with no environment; bad values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshlm.settings import Settings, SettingsError, main, markdown_table


def test_defaults_need_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.home == tmp_path / ".freshlm"
    assert s.store_uri == (tmp_path / ".freshlm" / "store").as_uri()
    assert s.s3_endpoint_url is None
    assert s.world_url == "http://127.0.0.1:8766"
    assert s.airflow_home == tmp_path / ".freshlm" / "airflow"
    assert s.airflow_parallelism == 2


def test_derived_defaults_follow_overrides(tmp_path: Path):
    s = Settings.from_env({"FRESHLM_HOME": str(tmp_path / "h"), "FRESHLM_WORLD_PORT": "9001"})
    assert s.store_uri == (tmp_path / "h" / "store").as_uri()
    assert s.world_url == "http://127.0.0.1:9001"


def test_overrides_are_typed():
    s = Settings.from_env(
        {
            "FRESHLM_STORE_URI": "s3://freshlm-data/nightly/",
            "FRESHLM_S3_ENDPOINT_URL": "http://127.0.0.1:8333",
            "FRESHLM_S3_MAX_ATTEMPTS": "7",
            "FRESHLM_HTTP_TIMEOUT_S": "2.5",
            "FRESHLM_CRAWL_SCHEDULE": "30 1 * * 1-5",
            "FRESHLM_LOG_LEVEL": "DEBUG",
        }
    )
    assert s.store_uri == "s3://freshlm-data/nightly"
    assert s.s3_endpoint_url == "http://127.0.0.1:8333"
    assert s.s3_max_attempts == 7
    assert s.http_timeout_s == 2.5
    assert s.crawl_schedule == "30 1 * * 1-5"
    assert s.log_level == "debug"


@pytest.mark.parametrize(
    ("var", "value", "accepts"),
    [
        ("FRESHLM_WORLD_PORT", "eighty", "an integer TCP port from 1 to 65535"),
        ("FRESHLM_WORLD_PORT", "70000", "an integer TCP port from 1 to 65535"),
        ("FRESHLM_STORE_URI", "/tmp/relative-looking", "file:///absolute/path or s3://"),
        ("FRESHLM_STORE_URI", "file://relative/path", "file:///absolute/path or s3://"),
        ("FRESHLM_STORE_URI", "s3://Bad_Bucket", "s3://bucket[/prefix]"),
        ("FRESHLM_S3_ENDPOINT_URL", "localhost:8333", "an http:// or https:// URL"),
        ("FRESHLM_S3_MAX_ATTEMPTS", "0", "a positive integer"),
        ("FRESHLM_HTTP_TIMEOUT_S", "-1", "a positive number"),
        ("FRESHLM_CRAWL_SCHEDULE", "every night", "5-field cron expression"),
        ("FRESHLM_LOG_LEVEL", "loud", "one of debug, info, warning, error"),
        ("FRESHLM_EVAL_CONFIG", "crows_max_pairs=300", "not JSON"),
        ("FRESHLM_EVAL_CONFIG", "[300]", "got a JSON list"),
    ],
)
def test_invalid_values_name_the_variable_and_what_it_accepts(var, value, accepts):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({var: value})
    message = str(err.value)
    assert message.startswith(f"{var}={value!r} is invalid")
    assert accepts in message


def test_cli_reports_configuration_errors_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setenv("FRESHLM_WORLD_PORT", "nope")
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "FRESHLM_WORLD_PORT='nope' is invalid" in err
    assert "Traceback" not in err


def test_settings_round_trip_through_environment(tmp_path: Path):
    s = Settings.from_env({"FRESHLM_HOME": str(tmp_path)})
    assert Settings.from_env(s.as_env()) == s
    manual = Settings.from_env({"FRESHLM_HOME": str(tmp_path), "FRESHLM_CRAWL_SCHEDULE": "none"})
    assert manual.crawl_schedule is None
    assert Settings.from_env(manual.as_env()) == manual


def test_markdown_table_lists_every_variable():
    table = markdown_table()
    for env in Settings.from_env({}).as_env():
        assert f"`{env}`" in table


@pytest.mark.parametrize(
    ("base", "epochs", "layers", "augment", "rate"),
    [
        ("tiny", 30.0, 0, False, 1e-3),  # from scratch: every block, many passes, plain documents
        ("smollm2-135m-instruct", 4.0, 8, True, 5e-4),  # pretrained: top blocks, facts as Q&A
        ("/models/some-hf-folder", 4.0, 8, True, 5e-4),  # any other model is a pretrained one
    ],
)
def test_training_defaults_follow_the_base_models_recipe(base, epochs, layers, augment, rate):
    s = Settings.from_env({"FRESHLM_BASE_MODEL": base})
    assert (s.train_epochs, s.train_layers, s.train_augment) == (epochs, layers, augment)
    assert s.train_learning_rate == rate
    assert s.train_replay_ratio == (0.6 if base == "tiny" else 0.3)
    # What a subprocess is handed reproduces the same settings.
    assert Settings.from_env(s.as_env()) == s


def test_each_recipe_setting_overrides_the_base_models_recipe():
    s = Settings.from_env(
        {
            "FRESHLM_BASE_MODEL": "smollm2-135m-instruct",
            "FRESHLM_TRAIN_EPOCHS": "2",
            "FRESHLM_TRAIN_LEARNING_RATE": "2e-4",
            "FRESHLM_TRAIN_LAYERS": "0",
            "FRESHLM_TRAIN_AUGMENT": "false",
            "FRESHLM_TRAIN_REPLAY_RATIO": "0",
        }
    )
    assert (s.train_epochs, s.train_learning_rate, s.train_layers, s.train_augment) == (
        2.0,
        2e-4,
        0,
        False,
    )
    assert s.train_replay_ratio == 0.0
    with pytest.raises(SettingsError, match="FRESHLM_TRAIN_LAYERS='-1'"):
        Settings.from_env({"FRESHLM_TRAIN_LAYERS": "-1"})
    with pytest.raises(SettingsError, match=r"FRESHLM_TRAIN_REPLAY_RATIO='1'.*\[0, 1\)"):
        Settings.from_env({"FRESHLM_TRAIN_REPLAY_RATIO": "1"})
