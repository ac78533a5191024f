"""Writes deploy/k8s/serve.yaml: the model server's Deployment and Service from
freshlm.serving.k8s_specs, rendered for the example settings below (an S3 store on AWS).
tests/deploy keeps the file in sync. For your own settings render it directly instead:

    FRESHLM_STORE_URI=s3://your-bucket/prefix .venv/bin/python -m freshlm.serving.k8s_specs

    .venv/bin/python deploy/k8s/render_serve.py > deploy/k8s/serve.yaml
"""

from __future__ import annotations

import yaml

from freshlm.serving import k8s_specs
from freshlm.settings import Settings

# The example cluster's settings: everything else is FreshLM's default (namespace freshlm,
# the store Secret freshlm-store-credentials, the image FRESHLM_K8S_TRAIN_IMAGE).
EXAMPLE_ENV = {"FRESHLM_STORE_URI": "s3://freshlm-data/store", "FRESHLM_HOME": "/var/lib/freshlm"}
HEADER = """\
# The model server on Kubernetes: Deployment (2 replicas, CPU) and Service, rendered from
# freshlm.serving.k8s_specs by deploy/k8s/render_serve.py for FRESHLM_STORE_URI
# s3://freshlm-data/store. Edit the store, or render your own with
# `python -m freshlm.serving.k8s_specs [--replicas N] [--gpus N]`.
"""


def render() -> str:
    settings = Settings.from_env(EXAMPLE_ENV)
    docs = [k8s_specs.deployment(settings, replicas=2), k8s_specs.service(settings)]
    return HEADER + yaml.safe_dump_all(docs, sort_keys=False)


if __name__ == "__main__":
    print(render(), end="")
