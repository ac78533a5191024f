"""freshlm_deploy under a real Airflow: its reload call reaches a real model server, whose
answer is in the task's XCom and log, and the server records the call in the store."""

from __future__ import annotations

import pytest

from freshlm.registry import PRODUCTION, read_alias
from freshlm.store import open_store
from sandbox.base_model import bootstrap_demo_base
from tests.dags.base_model import SMALL_BASE
from tests.serving.inprocess import serving
from tests.support.airflow_server import dump_failure

pytestmark = [pytest.mark.airflow]

DEPLOY = "freshlm_deploy"


def test_deploy_makes_the_server_serve_production_and_records_the_call(
    airflow_client, freshlm_home, tmp_path
):
    client = airflow_client
    client.wait_for_dags([DEPLOY])
    store = open_store((freshlm_home / "store").as_uri())
    bootstrap_demo_base(store, config=SMALL_BASE)
    production = read_alias(store, PRODUCTION).version_id
    run = "test__deploy"
    # Promotions by other tests must not start deploy runs against no server.
    client.clear_queued_asset_events(DEPLOY)
    client.unpause(DEPLOY)
    try:
        # The workers have the embedded (loopback) token, and so has this server.
        with serving(store.root_uri, tmp_path) as url:
            client.trigger(DEPLOY, conf={"serve_url": url, "reason": "test"}, run_id=run)
            final = client.wait_for_run(DEPLOY, run, timeout_s=300)
    finally:
        client.pause(DEPLOY)
    assert final["state"] == "success", dump_failure(client, DEPLOY, run)
    result = client.xcom(DEPLOY, run, "reload")
    assert result["serving"] == production and result["result"] == "unchanged"
    assert f"run:{run}" in result["actor"]
    assert f"reload: unchanged; serving {production}" in client.task_log(DEPLOY, run, "reload")
    records = [store.read_json(k) for k in store.list("serving/deployments/")]
    assert any(r["actor"] == f"dag:{DEPLOY}/run:{run}" for r in records), records
