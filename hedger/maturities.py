"""A multiset of loan maturities that yields the latest one in O(log n).

Owns: `MaturityIndex`, so finding the exposure maturity T never scans the
issuer's loans. Imports only the standard library.
"""

from __future__ import annotations

import heapq
from datetime import date


class MaturityIndex:
    """Counts of open-loan maturities, with a max-heap of ordinals and lazy deletion."""

    __slots__ = ("_counts", "_heap")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._heap: list[int] = []  # negated ordinals: heapq is a min-heap

    def add(self, maturity: date, loans: int = 1) -> None:
        """Count `loans` more open loans maturing on `maturity`."""
        key = maturity.toordinal()
        count = self._counts.get(key, 0)
        self._counts[key] = count + loans
        if count == 0:
            heapq.heappush(self._heap, -key)

    def remove(self, maturity: date) -> None:
        """Count one open loan fewer maturing on `maturity`."""
        key = maturity.toordinal()
        count = self._counts[key]
        if count == 1:
            del self._counts[key]
        else:
            self._counts[key] = count - 1

    def latest(self) -> date | None:
        """The latest maturity of an open loan, or None when there is none."""
        heap = self._heap
        while heap and -heap[0] not in self._counts:
            heapq.heappop(heap)  # stale: its last loan went away
        return date.fromordinal(-heap[0]) if heap else None

    def count(self, maturity: date) -> int:
        """Open loans maturing on `maturity`."""
        return self._counts.get(maturity.toordinal(), 0)

    def counts(self) -> dict[date, int]:
        """The multiset as {maturity: open loans}, for snapshots."""
        return {date.fromordinal(k): v for k, v in self._counts.items()}

    def __len__(self) -> int:
        return len(self._counts)
