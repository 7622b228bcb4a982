"""The SQL helpers the loader builds its statements from."""

from __future__ import annotations

import random

import duckdb
import pytest

from dagster_project.extracts.sql import trimmed

# every character DuckDB's trim() might treat as a space, and neighbours it must keep
SPACES = [" ", "\u00a0", "\u1680", *map(chr, range(0x2000, 0x200B)), "\u202f", "\u205f", "\u3000"]
KEPT = ["\t", "\n", "\r", "\x0b", "\x0c", "\u0085", "\u200b", "\u2028", "\ufeff"]
TEXT = ["a", "Z", "9", "-", "张", "伟", "é", "😀", "'", ","]


@pytest.fixture(scope="module")
def con():
    with duckdb.connect() as c:
        yield c


def _compare(con: duckdb.DuckDBPyConnection, values: list[str | None]) -> None:
    rows = con.execute(
        f"select v, trim(v), {trimmed('v')} from unnest(?::varchar[]) as t(v)", [values]
    ).fetchall()
    assert len(rows) == len(values)
    for value, expected, got in rows:
        assert got == expected, f"{value!r}: trimmed() gave {got!r}, trim() gives {expected!r}"


def test_trimmed_equals_trim_on_every_space_character(con):
    values: list[str | None] = [None, "", "abc", "a b", "  ", "张伟"]
    for ch in SPACES + KEPT:
        values += [ch, ch + "a", "a" + ch, ch + "a" + ch, "a" + ch + "b", ch + "张" + ch, ch * 3]
    _compare(con, values)


def test_trimmed_equals_trim_on_random_strings(con):
    rng = random.Random(20261122)
    alphabet = SPACES + KEPT + TEXT * 3
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(20_000)]
    _compare(con, values)


def test_trimmed_really_trims(con):
    """Guards the comparison itself: the values above do get trimmed."""
    got = con.execute(f"select {trimmed('v')} from (select ' a\u3000' as v)").fetchone()[0]
    assert got == "a"
