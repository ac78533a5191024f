"""The demo's base model: the world archive published as the base corpus, then bootstrapped.

The one entry point the demo, the tests and the benches use to get an embedded base model:
:func:`bootstrap_demo_base` publishes the sandbox world's archive as the base-corpus dataset
(:func:`sandbox.base_corpus.publish_base_corpus`, idempotent) and bootstraps the base model
from that dataset (:func:`training.bootstrap.bootstrap_base_model`), which becomes
``production`` if nothing is.

CLI: ``python -m sandbox.base_model [--tiny] [--steps N] [--seed S] [--store URI] [--retrain]``
prints the version and its metrics as JSON.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sandbox.base_corpus import HELDOUT_EVERY, publish_base_corpus
from training.bootstrap import BootstrapConfig, bootstrap_base_model

if TYPE_CHECKING:
    from freshlm.store import Store


def bootstrap_demo_base(
    store: Store,
    *,
    config: BootstrapConfig | None = None,
    seed: int = 0,
    reuse: bool = True,
    heldout_every: int = HELDOUT_EVERY,
) -> dict[str, Any]:
    """Publish the archive as the base corpus, then bootstrap the base model from it; the
    bootstrap's summary (``base_corpus_dataset`` names the corpus)."""
    corpus = publish_base_corpus(store, heldout_every=heldout_every)
    return bootstrap_base_model(store, corpus=corpus, config=config, seed=seed, reuse=reuse)


def demo_base(store: Store, base_model: str) -> dict[str, Any]:
    """The demo's base: the archive published as the base corpus (old text for replay and
    retention whatever the base), then the base model the ``FRESHLM_BASE_MODEL`` setting
    names (:func:`training.base_import.ensure_base`); its summary."""
    from training.base_import import ensure_base

    corpus = publish_base_corpus(store)
    return {**ensure_base(store, base_model, corpus=corpus), "base_corpus_dataset": corpus}


def main(argv: Sequence[str] | None = None) -> int:
    """Publish the archive as the base corpus, then run ``python -m training.bootstrap`` on it
    with the same arguments (``--steps``, ``--seed``, ``--store``, ``--tiny``, ``--retrain``)."""
    from freshlm.store import StoreError, open_store
    from training.bootstrap import main as bootstrap_main

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--store")
    known, _ = parser.parse_known_args(argv)
    try:
        corpus = publish_base_corpus(open_store(known.store))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return bootstrap_main([*argv, "--corpus", corpus])


if __name__ == "__main__":
    sys.exit(main())
