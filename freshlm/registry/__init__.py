"""The model registry: versions with their manifests and lineage, aliases, and the audit log.

* :mod:`freshlm.registry.versions` — ``models/<version_id>/``: immutable, content-addressed
  Hugging Face model folders with a model card; :func:`publish_version`,
  :func:`list_versions`, :func:`get_version`, :func:`download_version`.
* :mod:`freshlm.registry.aliases` — ``production`` and ``previous`` (and any other alias):
  atomic compare-and-swap moves with an append-only audit log; :func:`move_alias`,
  :func:`read_alias`, :func:`rollback`, :func:`read_audit`.
* :mod:`freshlm.registry.model_card` — the Hugging Face model card each version carries.
* :mod:`freshlm.registry.forgotten` — the "trained on forgotten data" mark a forget request
  puts on the versions trained on what it removed.

Everything goes through :class:`freshlm.store.Store`, so the registry works the same on a local
folder and on S3. Importing it is cheap (no torch or transformers), so DAG files may.
"""

from __future__ import annotations

from freshlm.registry.aliases import (
    ABSENT,
    PREVIOUS,
    PRODUCTION,
    AliasMove,
    list_aliases,
    move_alias,
    read_alias,
    read_audit,
    rollback,
)
from freshlm.registry.errors import PromotionConflict, RegistryError, VersionNotFound
from freshlm.registry.model_card import render_model_card
from freshlm.registry.versions import (
    MODELS_PREFIX,
    Lineage,
    ModelVersion,
    download_version,
    get_version,
    list_versions,
    publish_version,
    root_version,
    version_id_for_dir,
)

__all__ = [
    "ABSENT",
    "MODELS_PREFIX",
    "PREVIOUS",
    "PRODUCTION",
    "AliasMove",
    "Lineage",
    "ModelVersion",
    "PromotionConflict",
    "RegistryError",
    "VersionNotFound",
    "download_version",
    "get_version",
    "list_aliases",
    "list_versions",
    "move_alias",
    "publish_version",
    "read_alias",
    "read_audit",
    "render_model_card",
    "rollback",
    "root_version",
    "version_id_for_dir",
]
