"""Stage **serve**: the production model over HTTP, swapped to a new version without dropping
a request.

* :mod:`~freshlm.serving.server` — ``freshlm serve`` (``python -m freshlm.serving``): the
  process; :mod:`~freshlm.serving.app` its OpenAI-compatible API, health, metrics and the
  authenticated reload call;
* :mod:`~freshlm.serving.swaps` and :mod:`~freshlm.serving.slot` — load beside, switch,
  drain, free; a failed load keeps the old version and alerts Slack;
* :mod:`~freshlm.serving.loading`, :mod:`~freshlm.serving.transformers_backend` (CPU or GPU,
  request batching via :mod:`~freshlm.serving.batching`), :mod:`~freshlm.serving.vllm_backend`
  (optional, GPU only);
* :mod:`~freshlm.serving.deploy` — what ``freshlm_deploy`` runs: the reload call;
* :mod:`~freshlm.serving.k8s_specs` — the Deployment and Service.

Talks to other stages only through the registry (versions, the ``production`` alias) and the
store.
"""
