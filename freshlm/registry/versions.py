"""Model versions: immutable artifacts ``models/<version_id>/`` in the Hugging Face layout.

A version is a published artifact of kind ``"model"`` (data files first, manifest last; see
:mod:`freshlm.store.publish`). Its files are what ``save_pretrained`` writes for the model and
its tokenizer (``config.json``, ``model.safetensors``, ``tokenizer.json``, …) plus a Hugging Face
model card ``README.md`` rendered by :mod:`freshlm.registry.model_card`. Publishing the manifest
*is* the registration: there is no separate index that could disagree with the artifacts.

The version id is a content hash (32 hex) of every file except the model card, so the same
weights and tokenizer always get the same id, whoever publishes them and whenever (DESIGN
invariant 1); the card is left out because it carries the id itself and the lineage, which may
be described differently by a later publisher. Publishing a version that already exists keeps
the first one and returns it.

The manifest's ``fields`` carry ``version_id``, ``lineage`` (:class:`Lineage`: where the weights
came from, DESIGN invariant 4), ``metrics`` and ``model`` (architecture facts such as the
parameter count). Nothing in them depends on the clock; when and why a version went to
production is in the alias audit log (:mod:`freshlm.registry.aliases`).

Importing this module is cheap (no torch or transformers), so DAG files and the UI may use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from freshlm.registry.errors import RegistryError, VersionNotFound
from freshlm.store import Manifest, Store, StoreError

log = logging.getLogger(__name__)

MODELS_PREFIX = "models"
MODEL_KIND = "model"
CARD_NAME = "README.md"
VERSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
WEIGHT_SUFFIXES = (".safetensors", ".bin")
LINEAGE_KINDS = ("bootstrap", "external", "finetune")
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Where a model version came from (DESIGN invariant 4).

    * ``kind``: ``"bootstrap"`` (trained here from scratch), ``"external"`` (a Hugging Face
      model copied in by path or hub name) or ``"finetune"`` (trained from a registry version).
    * ``parent_version``: the registry version it was trained from (None unless fine-tuned
      from a registry version).
    * ``base_model``: the root of the chain: the bootstrap version's id, or the external
      model's hub name or path, carried down unchanged through fine-tunes.
    * ``source``: for external models the path or hub name copied; otherwise what produced it
      (e.g. ``"training.bootstrap"``).
    * ``dataset_ids`` / ``crawl_windows``: the published datasets trained on and their crawl
      windows (``{"start": iso, "end": iso}``).
    * ``training_config``: the hyper-parameters and recipe, as JSON.
    * ``code_revision``: the git revision of the code that trained it (``+dirty`` if modified).
    * ``evaluation_report``: the id or URI of the evaluation report that vetted it, if any.
    * ``extra``: anything else a producer wants to keep (JSON).
    """

    kind: str
    parent_version: str | None = None
    base_model: str | None = None
    source: str | None = None
    dataset_ids: tuple[str, ...] = ()
    crawl_windows: tuple[Mapping[str, Any], ...] = ()
    training_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    code_revision: str | None = None
    evaluation_report: str | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in LINEAGE_KINDS:
            raise ValueError(f"lineage kind must be one of {LINEAGE_KINDS}, not {self.kind!r}")
        if self.kind == "finetune" and not (self.parent_version or self.base_model):
            raise ValueError(
                "a fine-tuned version's lineage needs parent_version (the registry version it "
                "was trained from) or at least base_model (the folder or hub name)"
            )
        object.__setattr__(self, "dataset_ids", tuple(self.dataset_ids))
        object.__setattr__(self, "crawl_windows", tuple(dict(w) for w in self.crawl_windows))
        check_json(self.to_dict(), "lineage")

    def to_dict(self) -> dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc["dataset_ids"] = list(self.dataset_ids)
        doc["crawl_windows"] = [dict(w) for w in self.crawl_windows]
        doc["training_config"] = dict(self.training_config)
        doc["extra"] = dict(self.extra)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Lineage:
        """Parse a stored lineage; unknown keys (from a newer FreshLM) are kept in ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in doc.items() if k in names}
        unknown = {k: v for k, v in doc.items() if k not in names}
        if unknown:
            known["extra"] = {**dict(known.get("extra") or {}), **unknown}
        return cls(**known)


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A published model version, as read from its manifest."""

    version_id: str
    manifest: Manifest
    lineage: Lineage
    metrics: Mapping[str, Any]
    model: Mapping[str, Any]

    @property
    def prefix(self) -> str:
        return self.manifest.prefix

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.manifest.files)

    @property
    def trained_on_forgotten_data(self) -> bool:
        """Whether data it was trained on was forgotten on request since (see
        :mod:`freshlm.registry.forgotten`)."""
        return bool(self.manifest.fields.get("forgotten_data"))

    def to_dict(self) -> dict[str, Any]:
        """JSON for APIs and logs."""
        return {
            "version_id": self.version_id,
            "prefix": self.prefix,
            "files": list(self.files),
            "total_size": self.manifest.total_size,
            "lineage": self.lineage.to_dict(),
            "metrics": dict(self.metrics),
            "model": dict(self.model),
            "created_by": dict(self.manifest.created_by),
        }

    @classmethod
    def from_manifest(cls, manifest: Manifest, uri: str) -> ModelVersion:
        fields = manifest.fields
        try:
            return cls(
                version_id=manifest.artifact_id,
                manifest=manifest,
                lineage=Lineage.from_dict(fields["lineage"]),
                metrics=dict(fields.get("metrics") or {}),
                model=dict(fields.get("model") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryError(
                f"{uri}: not a valid model version manifest ({type(exc).__name__}: {exc})"
            ) from None


def check_json(value: Any, what: str) -> Any:
    """Refuse values that JSON cannot carry faithfully (objects, NaN, infinities)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON with finite numbers: {exc}") from None
    return value


def check_metrics(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metrics as a plain dict of JSON values; NaN or infinity is refused (it would poison
    comparisons at the promotion gate and is not valid JSON)."""
    metrics = dict(metrics or {})
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings, not {name!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"metric {name!r} is {value}; metrics must be finite numbers")
    return check_json(metrics, "metrics")


def check_version_id(version_id: object) -> str:
    if not isinstance(version_id, str) or not VERSION_ID_RE.match(version_id):
        raise RegistryError(
            f"{version_id!r} is not a model version id (32 lowercase hex characters, as listed "
            "by `list_versions`)"
        )
    return version_id


def version_prefix(version_id: str) -> str:
    return f"{MODELS_PREFIX}/{check_version_id(version_id)}"


# --- local model folders ----------------------------------------------------------------------


def model_files(model_dir: str | os.PathLike[str]) -> list[str]:
    """The files of a local Hugging Face model folder that make up a version, sorted.

    Hidden files and folders (``.git``, ``.cache``, lock files) and the model card are left
    out; symlinks are followed, so a hub cache snapshot works as is.
    """
    root = Path(model_dir)
    names = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        name = rel.as_posix()
        if name != CARD_NAME:
            names.append(name)
    return sorted(names)


def check_model_dir(model_dir: str | os.PathLike[str]) -> list[str]:
    """The folder's files (see :func:`model_files`) if it looks like a Hugging Face model with a
    tokenizer; otherwise :class:`RegistryError` saying what is missing."""
    root = Path(model_dir)
    if not root.is_dir():
        raise RegistryError(f"{root}: not a folder; expected a Hugging Face model folder")
    names = model_files(root)
    missing = []
    if "config.json" not in names:
        missing.append("config.json")
    if not any(n.endswith(WEIGHT_SUFFIXES) for n in names):
        missing.append("weights (*.safetensors or pytorch_model.bin)")
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    if not any(n in tokenizer_files for n in names):
        missing.append("a tokenizer (tokenizer.json or tokenizer_config.json)")
    if missing:
        raise RegistryError(
            f"{root}: not a complete Hugging Face model folder; missing {', '.join(missing)} "
            "(save it with model.save_pretrained(dir) and tokenizer.save_pretrained(dir))"
        )
    return names


def _file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def version_id_for_dir(model_dir: str | os.PathLike[str]) -> str:
    """The content id a folder would be published under: sha256 over the sorted
    ``[name, size, sha256]`` of its files (model card excluded), 32 hex."""
    root = Path(model_dir)
    entries = [[name, *_file_sha256(root / name)] for name in model_files(root)]
    canonical = json.dumps(entries, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# --- the registry's versions ------------------------------------------------------------------


def publish_version(
    store: Store,
    model_dir: str | os.PathLike[str],
    *,
    lineage: Lineage,
    metrics: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    created_by: Mapping[str, Any] | None = None,
    description: str | None = None,
) -> tuple[ModelVersion, bool]:
    """Publish a local Hugging Face model folder as a version; return ``(version, created)``.

    Files are streamed, never held in memory. The model card is rendered from ``lineage``,
    ``metrics`` and ``model`` (any ``README.md`` in the folder is replaced by it). If a
    version with the same content is already published, it is returned unchanged with
    ``created=False``: the first publisher's lineage and metrics stand.
    """
    from freshlm.registry.model_card import render_model_card

    names = check_model_dir(model_dir)
    metrics = check_metrics(metrics)
    model = check_json(dict(model or {}), "model")
    version_id = version_id_for_dir(model_dir)
    prefix = version_prefix(version_id)
    existing = store.read_manifest(prefix)
    if existing is not None:
        log.info("model version %s is already published; keeping it", version_id)
        return ModelVersion.from_manifest(existing, store.uri_for(prefix)), False
    card = render_model_card(
        version_id=version_id,
        lineage=lineage,
        metrics=metrics,
        model=model,
        description=description,
    )
    root = Path(model_dir)
    try:
        with store.publisher(prefix, kind=MODEL_KIND, created_by=created_by) as pub:
            for name in names:
                with open(root / name, "rb") as source, pub.open_write(name) as writer:
                    while chunk := source.read(_CHUNK):
                        writer.write(chunk)
            pub.write_bytes(CARD_NAME, card.encode())
            pub.set_manifest_fields(
                version_id=version_id, lineage=lineage.to_dict(), metrics=metrics, model=model
            )
    except StoreError:
        # A concurrent publisher of the same weights may have won with a different card:
        # the content is the same, so theirs is the version.
        existing = store.read_manifest(prefix)
        if existing is None:
            raise
        log.info("model version %s was published concurrently; keeping that one", version_id)
        return ModelVersion.from_manifest(existing, store.uri_for(prefix)), False
    assert pub.manifest is not None
    log.info(
        "published model version %s (%d files, %d bytes)",
        version_id,
        len(pub.manifest.files),
        pub.manifest.total_size,
    )
    return ModelVersion.from_manifest(pub.manifest, store.uri_for(prefix)), True


def get_version(store: Store, version_id: str) -> ModelVersion:
    """The published version; :class:`VersionNotFound` if there is none with that id."""
    prefix = version_prefix(version_id)
    manifest = store.read_manifest(prefix)
    if manifest is None:
        raise VersionNotFound(
            f"{store.uri_for(prefix)}: no model version {version_id} is published "
            "(see list_versions for those that are)"
        )
    if manifest.kind != MODEL_KIND:
        raise RegistryError(
            f"{store.uri_for(prefix)}: artifact of kind {manifest.kind!r}, not a model version"
        )
    return ModelVersion.from_manifest(manifest, store.uri_for(prefix))


def root_version(store: Store, version_id: str) -> str:
    """The first version of ``version_id``'s lineage: its parents followed until one has none
    (the bootstrapped or imported base); :class:`ValueError` naming a cycle. A parent the
    registry no longer holds ends the walk at its child, with a warning: that child is then
    the fixed reference (of the general-knowledge set, of the rehearsal) for the lineage
    below it."""
    seen = [version_id]
    current, version = version_id, get_version(store, version_id)
    while parent := version.lineage.parent_version:
        if parent in seen:
            raise ValueError(f"the lineage of {version_id} loops: {' -> '.join([*seen, parent])}")
        try:
            version = get_version(store, parent)
        except RegistryError as exc:
            log.warning(
                "lineage of %s: parent %s of %s is not readable (%s); taking %s as the base",
                version_id,
                parent,
                current,
                exc,
                current,
            )
            break
        seen.append(parent)
        current = parent
    return current


def iter_versions(store: Store) -> Iterator[ModelVersion]:
    """Every published model version, by id. Ids are content hashes, so this order says
    nothing about age: the alias audit log says what went to production when."""
    for prefix in store.list_published(MODELS_PREFIX + "/"):
        version_id = prefix[len(MODELS_PREFIX) + 1 :]
        if not VERSION_ID_RE.match(version_id):
            continue  # nested or foreign artifacts under models/ are not versions
        manifest = store.read_manifest(prefix)
        if manifest is not None and manifest.kind == MODEL_KIND:
            yield ModelVersion.from_manifest(manifest, store.uri_for(prefix))


def list_versions(store: Store) -> list[ModelVersion]:
    """See :func:`iter_versions`."""
    return list(iter_versions(store))


def download_version(store: Store, version_id: str, dest: str | os.PathLike[str]) -> Path:
    """Copy a version's files into the local folder ``dest`` (created if needed), checking each
    against the manifest's size and sha256, and return it: ready for
    ``AutoModelForCausalLM.from_pretrained(dest)`` and ``AutoTokenizer.from_pretrained(dest)``.

    Each file lands under its name only once complete and verified, so an interrupted
    download never leaves a truncated weights file that looks whole.
    """
    version = get_version(store, version_id)
    root = Path(dest)
    for entry in version.manifest.files:
        target = root / entry.name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        digest = hashlib.sha256()
        size = 0
        with (
            store.open_read(version.manifest.key(entry.name)) as source,
            open(partial, "wb") as sink,
        ):
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                sink.write(chunk)
        if size != entry.size or digest.hexdigest() != entry.sha256:
            partial.unlink(missing_ok=True)
            raise RegistryError(
                f"{store.uri_for(version.manifest.key(entry.name))}: does not match its "
                f"manifest (expected {entry.size} bytes sha256 {entry.sha256}, got {size} "
                f"bytes sha256 {digest.hexdigest()}); the stored version is damaged"
            )
        os.replace(partial, target)
    return root
