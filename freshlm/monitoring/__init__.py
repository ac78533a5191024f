"""Stage **monitor**: is production fresh, and does it answer the latest facts?

* :mod:`~freshlm.monitoring.timeline` — what the store says happened: crawled windows,
  published and quarantined batches, trained versions, promotion decisions;
* :mod:`~freshlm.monitoring.freshness` — freshness lag, gaps, windows never curated or never
  trained, missed nights a later crawl fetched (alerted while uncurated), batches folded into
  a later run, rejection streaks;
* :mod:`~freshlm.monitoring.canaries` — the latest facts asked of the served model over HTTP;
* :mod:`~freshlm.monitoring.check` — one check: figures, findings with what to do, the
  retraining to trigger; :mod:`~freshlm.monitoring.history` keeps each in the store and
  :mod:`~freshlm.monitoring.messages` writes the Slack alert.

What ``freshlm_monitor`` runs daily. Reads the store and the registry; talks to the model
server only over HTTP.
"""
