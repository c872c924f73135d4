"""Saved results: one JSON line per row in ``data_dir()/bench/results.jsonl``.

One row per line keeps the file appendable, greppable and readable with ``jq``; each row
carries its run id and the hardware fingerprint it was measured on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from lollma_tui.core import paths
from lollma_tui.core.bench.records import BenchRecord


def results_path() -> Path:
    return paths.data_dir() / "bench" / "results.jsonl"


class ResultStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or results_path()

    def save(self, records: Iterable[BenchRecord]) -> int:
        lines = [json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write of whole lines in append mode: a crash cannot interleave half a row.
        with open(self.path, "a+b") as out:
            text = "".join(lines)
            if out.seek(0, os.SEEK_END) > 0:
                out.seek(-1, os.SEEK_END)
                if out.read(1) != b"\n":
                    text = "\n" + text  # a row cut off by a crash or a full disk: or the next joins it
            out.write(text.encode("utf-8"))
            out.flush()
            os.fsync(out.fileno())
        return len(lines)

    def load(self, *, fingerprint: str | None = None) -> list[BenchRecord]:
        """Rows in the order they were saved; lines that do not parse are skipped (a row cut off
        by a crash can end in half a UTF-8 character). An unreadable file raises OSError."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        records: list[BenchRecord] = []
        for line in raw.splitlines():
            if not line.strip():
                continue
            try:
                data = json.loads(line.decode("utf-8"))
                if not isinstance(data, dict):
                    continue
                record = BenchRecord.from_dict(data)
            except (ValueError, TypeError):
                continue
            if fingerprint is None or record.fingerprint == fingerprint:
                records.append(record)
        return records
