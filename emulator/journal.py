"""The account's one lock and the journal every store writes its changes to.

Each store (budget policies, rule sets, budgets) takes ``lock`` for a whole call and, before the
call returns, hands the records of the objects it changed to ``write``; the records of one call go
to the state file in one append, so a crash keeps all of a call or none of it.  Without a state
file, ``write`` does nothing.  The journal is folded into a new snapshot when it grows past twice
the number of objects (+1000 lines), so a write costs O(1), not O(size of the state).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from emulator.persistence import StateFile

Record = dict[str, Any]


class Journal:
    """:param file: where to persist (None: in memory only).
    :param snapshot: the whole account as the snapshot holds it.
    :param size: how many objects the account holds (policies and budgets), for folding.
    """

    def __init__(
        self, file: StateFile | None, *, snapshot: Callable[[], dict[str, Any]], size: Callable[[], int]
    ) -> None:
        self.lock = threading.RLock()
        self._file = file
        self._snapshot = snapshot
        self._size = size

    def write(self, *records: Record) -> None:
        """Append the records of one call (the caller holds ``lock``)."""
        if not self._file:
            return
        self._file.append(list(records))
        if self._file.journal_lines > 2 * self._size() + 1000:
            self.write_snapshot()

    def write_snapshot(self) -> None:
        """Replace the snapshot with the account as it is now, and empty the journal."""
        if self._file:
            self._file.write_snapshot(self._snapshot())

    @property
    def writes(self) -> int:
        """Persistence writes so far (journal appends and snapshots)."""
        return self._file.writes if self._file else 0

    @property
    def path(self) -> str | None:
        return self._file.journal_path if self._file else None

    def close(self) -> None:
        if self._file:
            self._file.close()
