"""Running suites in an ephemeral GX context whose Data Docs site is a plain folder.

The context is ephemeral (nothing of GX's project layout is written anywhere) but its one Data
Docs site is a filesystem site at the folder the caller names, so after :meth:`DocsSite.build`
that folder is a self-contained static HTML site (``index.html``, suite pages, validation pages)
that the DAG copies into the store beside the candidate dataset.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.expectation_suite import ExpectationSuite
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

SITE_NAME = "freshlm_gate"
# Written into a folder the gate built, so a re-run may clear it and nothing else.
MARKER = ".freshlm-data-docs"
_SITE_ENTRIES = ("index.html", "static", "expectations", "validations", MARKER)


class DocsSite:
    """One gate run: validate frames against suites, then build the Data Docs at ``folder``.

    ``folder`` must be absent, empty, or a site a previous gate run built (it is then cleared,
    so a re-run leaves exactly one run's pages). Anything else is refused rather than deleted.
    """

    def __init__(self, folder: Path, run_name: str) -> None:
        self.folder = Path(folder).resolve()
        _prepare(self.folder)
        self.context = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                # No default temp-dir site: ours below is the only one.
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                # Progress bars would fill the Airflow task log with carriage-return noise.
                progress_bars=ProgressBarsConfig(globally=False),
                analytics_enabled=False,
            ),
        )
        self.context.add_data_docs_site(
            site_name=SITE_NAME,
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(self.folder),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        self._datasource = self.context.data_sources.add_pandas("freshlm")
        self._batches: dict[str, Any] = {}
        self._run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))

    def validate(
        self, suite: ExpectationSuite, frame_name: str, frame: pd.DataFrame, result_format: dict
    ) -> ExpectationSuiteValidationResult:
        """Validate ``frame`` (registered under ``frame_name``) against ``suite``; the result is
        stored in the context so :meth:`build` renders it."""
        if frame_name not in self._batches:
            asset = self._datasource.add_dataframe_asset(frame_name)
            self._batches[frame_name] = asset.add_batch_definition_whole_dataframe(frame_name)
        stored_suite = self.context.suites.add(suite)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(
                name=suite.name, data=self._batches[frame_name], suite=stored_suite
            )
        )
        return definition.run(
            batch_parameters={"dataframe": frame},
            result_format=result_format,
            run_id=self._run_id,
        )

    def build(self) -> Path:
        """Render the Data Docs into the folder; returns its ``index.html``."""
        self.context.build_data_docs(site_names=[SITE_NAME])
        _prune_unused_images(self.folder)
        (self.folder / MARKER).write_text("built by expectations.gate; safe to replace\n")
        index = self.folder / "index.html"
        if not index.is_file():
            raise RuntimeError(f"Great Expectations built no Data Docs index at {index}")
        return index


def _prepare(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"data_docs_dir {folder} is a file")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise FileExistsError(
                f"data_docs_dir {folder} is not empty and was not built by the gate; "
                "give an empty or new folder"
            )
        for entry in _SITE_ENTRIES:
            path = folder / entry
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _prune_unused_images(folder: Path) -> None:
    """Delete GX's bundled images that no page references (about 3.4 MB of tutorial GIFs that
    would otherwise be copied beside every nightly dataset)."""
    images = folder / "static" / "images"
    if not images.is_dir():
        return
    pages = "".join(p.read_text(errors="replace") for p in folder.rglob("*.html"))
    styles = "".join(p.read_text(errors="replace") for p in folder.rglob("*.css"))
    for image in images.iterdir():
        if image.is_file() and image.name not in pages and image.name not in styles:
            image.unlink()
