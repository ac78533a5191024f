"""Shared fixtures. Each support module is a pytest plugin with one kind of real component."""

pytest_plugins = [
    "tests.support.airflow_server",
    "tests.support.s3_server",
    "tests.support.world_server",
]
