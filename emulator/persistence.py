"""Persistence of the emulated account: a JSON snapshot plus an append-only journal.

The snapshot is written atomically (temp file + ``os.replace``); every mutation is appended to
``path + ".journal"`` (one JSON line per changed object) before the call returns, so a restarted
-- even SIGKILLed -- emulator finds every acknowledged change.  The owner folds the journal into
a new snapshot when it grows (``journal_lines``), so a write costs O(1), not O(size of state).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any


class StateFile:
    def __init__(self, path: str, *, fsync: bool = False) -> None:
        self.path = os.fspath(path)
        self.fsync = fsync  # only matters for a machine crash: os.replace is atomic for a restart
        self.writes = 0  # journal appends and snapshots
        self.journal_lines = 0  # lines in the journal since the last snapshot
        self._journal_fd: int | None = None

    @property
    def journal_path(self) -> str:
        return self.path + ".journal"

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append ``records`` to the journal (durable before this returns, for a restart)."""
        lines = [json.dumps(record, separators=(",", ":"), ensure_ascii=False) for record in records]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self._journal_fd is None:
            self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._journal_fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._journal_fd)
        self.writes += 1
        self.journal_lines += len(lines)

    def write_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Write the whole state atomically, then empty the journal it now contains."""
        data = json.dumps(snapshot, separators=(",", ":"), ensure_ascii=False)
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".emulator-state-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                if self.fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # Replaying a journal over a snapshot that already holds it ends in the same state, so
        # a crash between the replace above and this truncate loses nothing.
        if self._journal_fd is not None:
            os.ftruncate(self._journal_fd, 0)
        elif os.path.exists(self.journal_path):
            with open(self.journal_path, "r+b") as handle:
                handle.truncate(0)
        self.journal_lines = 0
        self.writes += 1

    def read(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The snapshot and the journal's records after it (a torn last line, never acknowledged,
        is dropped; a corrupt line before others is an error)."""
        with open(self.path, encoding="utf-8") as handle:
            snapshot = json.load(handle)
        records: list[dict[str, Any]] = []
        if os.path.exists(self.journal_path):
            with open(self.journal_path, encoding="utf-8") as handle:
                lines = handle.read().split("\n")
            for number, line in enumerate(lines):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except ValueError:
                    if any(rest.strip() for rest in lines[number + 1 :]):
                        raise ValueError(f"{self.journal_path}: line {number + 1} is corrupt") from None
                    break  # a write cut short by a crash: it was never acknowledged
        return snapshot, records

    def close(self) -> None:
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None
