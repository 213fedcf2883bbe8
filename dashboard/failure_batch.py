"""One batch of the failure index's reads: which rows it has and which of them one SORT may read.

:mod:`dashboard.failure_index` reads a batch's sizes first (``read_failure_sizes``); :func:`plan`
turns them into a :class:`Batch` and picks the prefix whose values one ``SORT ... GET`` may
copy. Pure: no I/O, no Redis (and no Flask).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .codec import text

#: The values of a batch are read with one SORT ... GET when each job's reason and traces are at
#: most SORT_FIELD_LIMIT bytes, SORT_BYTES in all (a few milliseconds of Redis); else by script.
SORT_FIELD_LIMIT, SORT_BYTES = 64 * 1024, 1024 * 1024


@dataclass
class Batch:
    """One batch: its rows (id, score, known, bytes), how many of them ``reply`` (a SORT's flat
    reply) covers, whether every row was indexed already, and the next batch's sizes."""

    rows: list[tuple[str, str, bool, int]]
    taken: int
    reply: list[Any] | None
    all_known: bool
    ahead: Any = None  # the sizes of the batch after ``taken`` rows, read with the SORT
    pending: bool = False  # its SORT was sent on a Wire, the reply not read yet
    raw_ids: list[Any] = field(default_factory=list)  # the ids as the sizes' reply gave them


def plan(sizes: Any) -> Batch:
    """The rows of a batch from ``read_failure_sizes``'s reply, and the longest prefix of them
    one SORT may copy (small fields, :data:`SORT_BYTES` in all; ``taken`` 0 when too few are
    unknown for a SORT to pay: then the batch is read by script)."""
    raw_ids = sizes[0::4]
    if all(isinstance(x, bytes) for x in raw_ids):  # one decode call each, no per-value type test
        ids, scores = [x.decode("utf-8", "replace") for x in raw_ids], [x.decode() for x in sizes[1::4]]
    else:
        ids, scores = [text(x) for x in raw_ids], [text(x) for x in sizes[1::4]]
    rows = list(zip(ids, scores, [x in (b"1", "1") for x in sizes[2::4]], [int(x) for x in sizes[3::4]]))
    unknown = sum(1 for row in rows if not row[2])
    if not unknown:
        return Batch(rows, len(rows), None, True, raw_ids=raw_ids)
    taken, total = len(rows), 0
    for n, (_, _, known, size) in enumerate(rows):
        if not known and (size < 0 or size > SORT_FIELD_LIMIT or (n and total + size > SORT_BYTES)):
            taken = n
            break
        total += max(size, 0)
    if unknown * 4 < len(rows):
        taken = 0
    return Batch(rows, taken, None, False, raw_ids=raw_ids)
