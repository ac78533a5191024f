"""FreshLM's console: the operator pages the Airflow plugin mounts on the API server.

Server-rendered pages over the artifact store and the registry (models, datasets, lineage,
freshness, stored files), and two actions that trigger DAGs through Airflow's REST API as the
logged-in user (roll back, accept a quarantined batch). Airflow does not authenticate plugin
apps: every route verifies the caller with Airflow's auth manager (:mod:`.auth`).

The routes are declared against the URL builders of :mod:`freshlm.alerts.links`, so every link
an alert, a report or a task's extra link carries opens a page here. Only ``plugins/`` imports
this package (the import-linter layers in ``pyproject.toml``).
"""

from __future__ import annotations

from freshlm.console.app import create_app

__all__ = ["create_app"]
