"""Item pipelines: validate every record, and keep what fails with its reason.

Order (see ``ITEM_PIPELINES`` in :mod:`crawlers.settings` and :mod:`crawlers.run`):

1. :class:`ValidateRecordPipeline` checks each record against :data:`RECORD_SCHEMA`; a record
   that fails becomes a :class:`QuarantineItem` (reason ``schema``) naming the field.
2. :class:`DenyListPipeline` drops what was forgotten on request (``freshlm_forget``'s deny
   list in the store), records and quarantine items alike, counted as ``skipped/forgotten``.
3. :class:`ShardFilesPipeline` (added by the runner in DAG mode) appends records and quarantine
   items to the run's local part files, which the runner then publishes atomically.
4. :class:`QuarantineSinkPipeline` writes quarantine items to ``FRESHLM_QUARANTINE_PATH`` when
   set (hand-run crawls) and drops them, so ``-O out.jsonl`` holds only valid records.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from scrapy.exceptions import DropItem

from freshlm.records import RECORD_SCHEMA, QuarantineItem

_VALIDATOR = Draft202012Validator(RECORD_SCHEMA)
log = logging.getLogger(__name__)


def schema_problems(record: dict[str, Any]) -> list[str]:
    """Every way ``record`` breaks the schema, as ``field: problem`` strings (empty if valid)."""
    problems = []
    for error in sorted(_VALIDATOR.iter_errors(record), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path) or "(record)"
        problems.append(f"{where}: {error.message[:200]}")
    return problems


class ValidateRecordPipeline:
    """Pass valid records; turn invalid ones into quarantine items with the failing fields."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidateRecordPipeline:
        return cls(crawler)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if isinstance(item, QuarantineItem):
            return item
        record = dict(item)
        problems = schema_problems(record)
        if not problems:
            self.crawler.stats.inc_value("freshlm/records_valid")
            return record
        self.crawler.stats.inc_value("freshlm/quarantined/schema")
        log.warning("record %s fails the schema: %s", record.get("url"), problems)
        return QuarantineItem.of(
            reason="schema",
            detail="; ".join(problems),
            url=str(record.get("url", "")),
            source=str(record.get("source", getattr(self.crawler.spider, "source", ""))),
            raw=json.dumps(record, ensure_ascii=False, default=str),
        )


class DenyListPipeline:
    """Drop every item the deny list names (by id, URL or author), read once per crawl."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.deny = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> DenyListPipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        from freshlm.deny_list import read_deny_list
        from freshlm.store import open_store

        self.deny = read_deny_list(open_store())
        log.info("deny list: %d forgotten item(s) will be skipped", len(self.deny))

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if self.deny is not None and self.deny.denies(item):
            self.crawler.stats.inc_value("freshlm/skipped/forgotten")
            raise DropItem(f"forgotten on request; not collected: {item.get('url')}")
        return item


class ShardFilesPipeline:
    """Append records and quarantine items to gzip JSONL part files in a local folder.

    The folder comes from the ``FRESHLM_SHARD_DIR`` setting (set by the runner). Writing
    locally first and publishing after the crawl keeps the store's publish atomic: the
    manifest is written only once every file is complete.
    """

    def __init__(self, shard_dir: str) -> None:
        self.dir = Path(shard_dir)
        self._records = None
        self._quarantine = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> ShardFilesPipeline:
        shard_dir = crawler.settings.get("FRESHLM_SHARD_DIR")
        if not shard_dir:
            raise ValueError("ShardFilesPipeline needs the FRESHLM_SHARD_DIR setting")
        return cls(shard_dir)

    def open_spider(self, spider: Any = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # mtime=0: identical content gives identical bytes, so republishing is idempotent.
        self._records = gzip.GzipFile(self.dir / "records.jsonl.gz", "wb", mtime=0)
        self._quarantine = gzip.GzipFile(self.dir / "quarantine.jsonl.gz", "wb", mtime=0)

    def close_spider(self, spider: Any = None) -> None:
        for f in (self._records, self._quarantine):
            if f is not None:
                f.close()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        target = self._quarantine if isinstance(item, QuarantineItem) else self._records
        target.write((json.dumps(dict(item), ensure_ascii=False, sort_keys=True) + "\n").encode())
        return item


class QuarantineSinkPipeline:
    """Keep quarantine items out of feed exports; write them to a file when one is configured."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self._file = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> QuarantineSinkPipeline:
        return cls(crawler.settings.get("FRESHLM_QUARANTINE_PATH"))

    def open_spider(self, spider: Any = None) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")

    def close_spider(self, spider: Any = None) -> None:
        if self._file is not None:
            self._file.close()

    def process_item(self, item: Any, spider: Any = None) -> Any:
        if not isinstance(item, QuarantineItem):
            return item
        if self._file is not None:
            self._file.write(json.dumps(dict(item), ensure_ascii=False) + "\n")
        raise DropItem(f"quarantined ({item['reason']}): {item['detail'][:200]}")
