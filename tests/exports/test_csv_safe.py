"""Excel-safe CSV cells: formula neutralising, phone formatting, numbers, RFC 4180 quoting."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from dagster_project.exports.csv_safe import (
    BOM,
    csv_bytes,
    encode_row,
    format_decimal,
    format_int,
    format_phone,
    mask_phone,
    neutralise,
    quote_cell,
    text_cell,
    unneutralise,
)


@pytest.mark.parametrize(
    "raw",
    [
        '=HYPERLINK("http://x","click")',
        "+SUM(A1:A9)",
        "-2+3",
        "@SUM(1)",
        "\t=1+1",
        "\r=1+1",
        "\n=1+1",
        "\uff1d1+1",  # full-width equals sign
    ],
)
def test_formula_triggers_are_prefixed_with_a_quote(raw: str) -> None:
    assert neutralise(raw) == "'" + raw
    assert unneutralise(neutralise(raw)) == raw


@pytest.mark.parametrize("raw", ["王小明", "Li Na", "C000123", "'quoted already", "a=b", "1+1", ""])
def test_ordinary_text_is_left_alone(raw: str) -> None:
    assert neutralise(raw) == raw
    assert unneutralise(raw) == raw


def test_text_cell_handles_missing_values_and_lists() -> None:
    assert text_cell(None) == ""
    assert text_cell(float("nan")) == ""
    assert text_cell(["recency 40d", "=cmd"]) == "recency 40d; =cmd"
    assert text_cell(["=cmd", "x"]) == "'=cmd; x"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+86 138 0013 8000", "0086 138 0013 8000"),
        ("+8613800138000", "0086 138 0013 8000"),
        ("13800138000", "138 0013 8000"),
        ("138-0013-8000", "138 0013 8000"),
        ("010-6552 9988", "010 6552 9988"),
        ("+1 415 555 0100", "001 415 555 0100"),
        (" 021 5555 1234 ", "021 5555 1234"),
        ("", ""),
        (None, ""),
    ],
)
def test_phones_are_readable_and_inert(raw: str | None, expected: str) -> None:
    formatted = format_phone(raw)
    assert formatted == expected
    if formatted:
        # Starts with a digit (never a formula) and holds a space (Excel keeps it as text, so no
        # 1.38E+10 and no lost leading zero).
        assert formatted[0].isdigit()
        assert " " in formatted


def test_a_phone_column_value_that_is_not_a_phone_is_neutralised() -> None:
    assert format_phone("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert format_phone("+1+1+1") == "'+1+1+1"


def test_mask_phone() -> None:
    assert mask_phone("0086 138 0013 8000") == "138****8000"
    assert mask_phone("138 0013 8000") == "138****8000"
    assert mask_phone("010 6552 9988") == "010****9988"
    assert mask_phone("") == ""
    assert "0013" not in mask_phone("0086 138 0013 8000")


def test_numbers_are_formatted_deterministically() -> None:
    assert format_decimal(0.123456, 4) == "0.1235"
    assert format_decimal(0.5, 4) == "0.5000"
    assert format_decimal(2.675, 2) == "2.68"  # the number as written, not its binary neighbour
    assert format_decimal(Decimal("1234.5"), 2) == "1234.50"
    assert format_decimal(-0.001, 2) == "0.00"  # no negative zero
    assert format_decimal(1e-7, 4) == "0.0000"  # never an exponent
    assert format_decimal(12345678.9, 2) == "12345678.90"
    assert format_decimal(None, 2) == ""
    assert format_int(3.0) == "3"
    with pytest.raises(ValueError, match="not a number"):
        format_decimal("abc", 2)
    with pytest.raises(ValueError, match="finite"):
        format_decimal(float("inf"), 2)
    with pytest.raises(ValueError, match="whole"):
        format_int(2.5)


def test_rfc4180_quoting_round_trips_through_a_csv_reader() -> None:
    cells = ["plain", "with,comma", 'with "quote"', "line\nbreak", "cr\rhere", " spaced ", ""]
    assert quote_cell("plain") == "plain"
    assert quote_cell('a"b') == '"a""b"'
    line = encode_row(cells)
    assert line.endswith("\r\n")
    parsed = next(csv.reader(io.StringIO(line, newline="")))
    assert parsed == cells


def test_csv_bytes_has_bom_crlf_and_utf8() -> None:
    data = csv_bytes(["a", "b"], [["王小明", "1"], ["x", "2"]])
    assert data.startswith(BOM.encode("utf-8"))
    assert data.count(b"\r\n") == 3
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert data.decode("utf-8-sig") == "a,b\r\n王小明,1\r\nx,2\r\n"
