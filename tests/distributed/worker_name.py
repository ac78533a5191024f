"""Airflow's ``[core] hostname_callable`` for the test's Celery workers.

Both workers run on one machine, so the real hostname cannot tell them apart; each worker's
environment names it (``FRESHLM_TEST_WORKER_NAME``), and every task instance it runs records that
name as its ``hostname`` in Airflow, where the test reads it back through the REST API.
"""

from __future__ import annotations

import os
import socket

ENV_VAR = "FRESHLM_TEST_WORKER_NAME"


def hostname() -> str:
    return os.environ.get(ENV_VAR) or socket.getfqdn()
