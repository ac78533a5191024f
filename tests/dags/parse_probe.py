"""Parse each DAG file in a clean interpreter and report what parsing did, as JSON on stdout.

Run as a script by the DAG integrity tests, one process per DAG file, so that the modules a
file imports, the time it takes and the look-ups it attempts are its own and not left over
from another test. This is what Airflow's DAG processor does to a file, minus the DB.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

HEAVY_MODULES = ("torch", "transformers", "scrapy", "great_expectations", "deepspeed", "boto3")


def main(path: str) -> None:
    # Airflow and the task SDK are loaded once by the DAG processor for every file; importing
    # them first means the clock below measures the DAG file's own cost.
    import airflow.sdk
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.bases.hook import BaseHook

    lookups: list[str] = []

    def forbid(what):
        def recorder(*args, **kwargs):
            lookups.append(f"{what}{args[:1]}")
            raise RuntimeError(f"{what} called at parse time")

        return recorder

    airflow.sdk.Variable.get = forbid("Variable.get")
    airflow.sdk.Connection.get = forbid("Connection.get")
    BaseHook.get_connection = forbid("BaseHook.get_connection")
    original_connect = socket.socket.connect

    def no_network(self, address):
        lookups.append(f"socket.connect{address!r}")
        return original_connect(self, address)

    socket.socket.connect = no_network

    # The DAG processor imports a file's `airflow.*` imports (providers included) in its
    # long-lived manager before forking the parse (`[dag_processor] parsing_pre_import_modules`,
    # on by default): their cost is paid once per processor, not per parse. Do the same.
    import importlib

    from airflow.utils.file import iter_airflow_imports

    for module in iter_airflow_imports(path):
        importlib.import_module(module)

    already = {m for m in HEAVY_MODULES if m in sys.modules}
    # CPU seconds, not wall: the parse's own work, which a busy machine does not stretch.
    started = time.process_time()
    bag = DagBag(dag_folder=path, bundle_path=Path(path).parent, collect_dags=True)
    elapsed = time.process_time() - started

    dags = []
    for dag_id, dag in bag.dags.items():
        dags.append(
            {
                "dag_id": dag_id,
                "doc_md": dag.doc_md,
                "description": dag.description,
                "tags": sorted(dag.tags),
                "owner": dag.default_args.get("owner"),
                "retries": dag.default_args.get("retries"),
                "task_retries": {t.task_id: t.retries for t in dag.tasks},
                "task_owners": {t.task_id: t.owner for t in dag.tasks},
            }
        )
    report = {
        "file": path,
        "seconds": elapsed,
        "import_errors": {str(k): v for k, v in bag.import_errors.items()},
        "dags": dags,
        "heavy_modules": sorted(m for m in HEAVY_MODULES if m in sys.modules and m not in already),
        "lookups": lookups,
    }
    print("PARSE-REPORT " + json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
