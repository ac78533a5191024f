"""Stage **forget**: remove an item from every artifact on request (``freshlm_forget``).

:mod:`~freshlm.forget.request` checks what the UI asked; :mod:`~freshlm.forget.rewrite`
publishes new versions of the raw shards, candidates and datasets without the item;
:mod:`~freshlm.forget.run` puts it together: deny list, rewrites, derived artifacts, model
marks, the audit log and what a retrain of production needs.
"""
