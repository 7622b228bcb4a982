"""Physical line numbers and raw text, for the rare files where records and lines differ.

DuckDB numbers records, not lines. For almost every file the two agree (one record per line, no
blank lines) and the loader computes lines arithmetically. When they do not (a quoted field with a
line break, blank lines, an unterminated quote), these functions re-read the file once in Python to
find where each record starts and ends.
"""

from __future__ import annotations

import csv
import gzip
import logging
from dataclasses import dataclass

from .mapping import SourceMapping
from .prepare import PreparedFile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineMap:
    """Start/end physical lines of the well-formed and the malformed records, in file order."""

    good: list[tuple[int, int]]
    malformed: list[tuple[int, int]]
    note: str | None
    records: int  # records the csv module found (an independent count)


def _open_text(p: PreparedFile):
    open_ = gzip.open if p.compressed else open
    return open_(p.read_path, "rt", encoding="utf-8-sig", newline="")


def map_records(p: PreparedFile, mapping: SourceMapping, good: int, malformed: int) -> LineMap:
    """Map DuckDB's records to physical lines with the csv module, which splits records the same way.

    If the counts still disagree, fall back to record numbers and say so in the note.
    """
    goods: list[tuple[int, int]] = []
    bads: list[tuple[int, int]] = []
    blanks = 0
    with _open_text(p) as fh:
        reader = csv.reader(
            fh,
            delimiter=mapping.delimiter,
            quotechar=mapping.quote or None,
            quoting=csv.QUOTE_MINIMAL if mapping.quote else csv.QUOTE_NONE,
            strict=False,
        )
        prev_end = 0
        header_pending = mapping.header
        try:
            for fields in reader:
                start, end = prev_end + 1, reader.line_num
                prev_end = end
                if header_pending:
                    header_pending = False
                    continue
                if not fields:
                    blanks += 1
                    continue
                (goods if len(fields) == len(p.header) else bads).append((start, end))
        except csv.Error as exc:
            log.warning("%s: csv module stopped at line %d: %s", p.file.rel, reader.line_num, exc)
    if len(goods) == good and len(bads) == malformed:
        parts = []
        multi = sum(1 for s, e in goods + bads if e > s)
        if multi:
            parts.append(f"{multi} record(s) span several lines")
        if blanks:
            parts.append(f"{blanks} blank line(s) skipped")
        parts.append("line numbers are the first physical line of each record")
        return LineMap(goods, bads, "; ".join(parts), len(goods) + len(bads))
    log.warning("%s: could not map records to physical lines exactly; using record numbers", p.file.rel)
    h = 1 if mapping.header else 0
    return LineMap(
        [(i + 1 + h, i + 1 + h) for i in range(good)],
        [(0, 0)] * malformed,
        f"DuckDB read {good + malformed} records where the csv module finds {len(goods) + len(bads)}; "
        "line numbers are record numbers",
        len(goods) + len(bads),
    )


def read_lines(p: PreparedFile, wanted: dict[int, int]) -> list[tuple[int, str]]:
    """For each wanted start line, the text of physical lines start..end (inclusive), line breaks kept inside."""
    out: list[tuple[int, str]] = []
    if not wanted:
        return out
    last = max(wanted.values())
    with _open_text(p) as fh:
        pending: list[str] | None = None  # lines of a multi-line record being collected
        start = end = 0
        for number, text in enumerate(fh, start=1):
            if pending is not None:
                pending.append(text)
                if number >= end:
                    out.append((start, "".join(pending).rstrip("\r\n")))
                    pending = None
            elif number in wanted:
                end = wanted[number]
                if end <= number:
                    out.append((number, text.rstrip("\r\n")))
                else:
                    start, pending = number, [text]
            if number >= last and pending is None:
                break
    return out
