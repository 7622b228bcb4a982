"""Writes one extract file: canonical header, RFC 4180 quoting only where needed, `\\n` line ends.

Lines are assembled with Arrow string kernels and written from the array's data buffer, so a
file costs a handful of vectorized calls however many rows it has. The text is encoded as
UTF-8 or GB18030 and optionally gzip-compressed (with a zero timestamp, so the bytes depend on
the content only). Files are written to a temporary name and renamed, so a reader never sees a
half-written extract.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.demo import defects
from dagster_project.demo.render import buffer_of
from dagster_project.extracts import spec

# Columns whose text can contain a comma or a quote (names like "Chen, David" or a quoted nickname).
FREE_TEXT = frozenset({"full_name", "email", "phone"})


def quote_if_needed(column: pa.Array) -> pa.Array:
    """RFC 4180: quote a field that holds a comma, a quote or a line break; double inner quotes."""
    needs = pc.match_substring_regex(column, r'[",\r\n]')
    if not pc.any(needs).as_py():
        return column
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, column)


@dataclass
class WrittenFile:
    path: Path
    rows: int
    size: int
    defects: list[dict[str, object]] = field(default_factory=list)


def extract_path(out_dir: Path, kind: str, day: str, compress: bool) -> Path:
    """`<out>/<kind>/<kind>_YYYYMMDD.csv[.gz]` for a day written `YYYY-MM-DD`."""
    return out_dir / kind / f"{kind}_{day.replace('-', '')}.csv{'.gz' if compress else ''}"


def write_extract(
    path: Path,
    relative: str,
    kind: str,
    columns: list[pa.Array],
    encoding: str = "utf-8",
    compress: bool = False,
    dirty_rate: float = 0.0,
    rng: np.random.Generator | None = None,
) -> WrittenFile:
    names = spec.SPECS[kind].column_names
    if len(columns) != len(names):
        raise ValueError(f"{kind}: {len(columns)} columns given, the spec has {len(names)}")
    n = len(columns[0])
    plan = None
    if dirty_rate > 0 and n:
        assert rng is not None, "a dirty file needs a random generator"
        columns, plan = defects.plan_and_apply(kind, columns, dirty_rate, rng)
    touched = set(plan.columns) if plan else set()
    quoted = [
        quote_if_needed(c) if (name in FREE_TEXT or name in touched) else c
        for name, c in zip(names, columns, strict=True)
    ]
    records: list[dict[str, object]] = []
    body = b""
    rows = n
    if n:
        lines = pc.binary_join_element_wise(*quoted, ",", null_handling="replace", null_replacement="")
        if plan is not None:
            assert rng is not None
            lines, records = defects.finish_lines(plan, lines, quoted, rng, relative)
            rows = len(lines)
        body = buffer_of(pc.binary_join_element_wise(lines, "", "\n"))
    data = (",".join(names) + "\n").encode("ascii") + body
    if encoding != "utf-8":
        data = data.decode("utf-8").encode(encoding)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return WrittenFile(path=path, rows=rows, size=len(data), defects=records)
