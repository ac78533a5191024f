"""Stage **retention**: delete what is kept longer than allowed (``freshlm_retention``).

Raw shards hold unscrubbed crawl output; quarantine holds what curation or the gate set aside
(refused batches under ``quarantine/batches/`` and the candidates under ``candidates/`` with
every document, the dropped ones included). Each kind is kept for its setting's days
(``FRESHLM_RETAIN_RAW_DAYS``, ``FRESHLM_RETAIN_QUARANTINE_DAYS``) after its crawl window ends,
then deleted — unless a live model's lineage needs it: the raw shards and candidates behind
the datasets that a version some alias points at (``production``, ``previous``, …), or any of
its ancestors, was trained on. The checkpoints of a training run whose model version is
published serve no resume and go too. :mod:`freshlm.retention.sweep` does it, with a dry run.
"""
