"""CSV cells that are safe to open in Excel, written byte-for-byte deterministically.

Retention agents open the target lists in Excel. Three things go wrong with a naive CSV writer:

* Formula injection. A cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage return,
  which Excel strips before looking again) is evaluated as a formula, so a customer who registers
  as `=HYPERLINK("http://x")` gets a live link in an agent's spreadsheet. Text cells that start
  with one of those characters (or their full-width forms, which some Excel input locales fold
  into the ASCII ones) are prefixed with a single quote `'`, the OWASP-recommended neutraliser.
* Phone numbers. `+86 138 0013 8000` starts with `+`, so Excel reads it as a formula and shows
  `#NAME?`; `13800138000` without spaces is read as a number and shown as `1.38E+10`. Phones are
  therefore normalised (see `format_phone`): digits in space-separated groups, with a leading `+`
  written as `00`, the international access code dialled from mainland China. The cell then
  starts with a digit (inert) and contains spaces (stays text), so Excel shows exactly what is in
  the file and an agent can still dial it.
* Encoding and line ends. Files are UTF-8 with a byte-order mark (without it Excel decodes
  Chinese names as ANSI) and CRLF line ends, quoted per RFC 4180.

Numbers are formatted by us with a fixed number of decimals, never neutralised: `-12.50` is a
number to Excel, not a formula.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

BOM = "\ufeff"
CRLF = "\r\n"

# First characters that make Excel, LibreOffice or Google Sheets treat a cell as a formula
# (tab and CR because Excel strips them and then looks at the next character; LF for the same
# reason in LibreOffice). Full-width forms: some East-Asian Excel input modes fold them into the
# ASCII characters, so they are neutralised too.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
NEUTRALISER = "'"

# A phone as the CUSTOMERS extract spec allows it: digits with an optional leading +, spaces, dashes.
_PHONE_RE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def is_missing(value: object) -> bool:
    """True for None, NaN, pandas' NA/NaT: values written as an empty cell."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    return type(value).__name__ in {"NAType", "NaTType"}


def neutralise(text: str) -> str:
    """Prefix a text cell that a spreadsheet would evaluate as a formula with a single quote."""
    if text and text[0] in FORMULA_TRIGGERS:
        return NEUTRALISER + text
    return text


def unneutralise(text: str) -> str:
    """Undo `neutralise` (for values read back from a file we wrote or an agent re-uploads)."""
    if len(text) >= 2 and text[0] == NEUTRALISER and text[1] in FORMULA_TRIGGERS:
        return text[1:]
    return text


def text_cell(value: object) -> str:
    """A free-text cell: missing -> empty, lists joined with '; ', then neutralised."""
    if is_missing(value):
        return ""
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(v) for v in value if not is_missing(v))
    return neutralise(str(value))


def _group_digits(digits: str) -> list[str]:
    """Split an unseparated number into groups, last two of four: 13800138000 -> 138 0013 8000."""
    if len(digits) <= 4:
        return [digits]
    if len(digits) <= 8:
        return [digits[:-4], digits[-4:]]
    return [digits[:-8], digits[-8:-4], digits[-4:]]


def format_phone(value: object) -> str:
    """A phone number Excel shows as written and never evaluates.

    `+86 138 0013 8000` -> `0086 138 0013 8000`; `138-0013-8000` -> `138 0013 8000`;
    `13800138000` -> `138 0013 8000`; `+8613800138000` -> `0086 138 0013 8000`.
    The source's own grouping is kept (dashes become spaces). A value that is not a phone number
    by the extract spec's definition is treated as ordinary text (and neutralised).
    """
    if is_missing(value):
        return ""
    raw = str(value).strip()
    if not raw:
        return ""
    if not _PHONE_RE.fullmatch(raw):
        return text_cell(raw)
    international = raw.startswith("+")
    groups = re.findall(r"[0-9]+", raw)
    if sum(len(g) for g in groups) < 5:
        return text_cell(raw)
    if len(groups) == 1:
        digits = groups[0]
        if international and digits.startswith("86") and len(digits) == 13:
            groups = ["86", *_group_digits(digits[2:])]
        else:
            groups = _group_digits(digits)
    if international:
        groups[0] = "00" + groups[0]
    return " ".join(groups)


def mask_phone(value: str) -> str:
    """Mask a phone for viewers who must not see it: `0086 138 0013 8000` -> `138****8000`."""
    digits = re.sub(r"[^0-9]", "", value)
    if not digits:
        return ""
    if digits.startswith("0086") and len(digits) == 15:
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def format_decimal(value: object, places: int) -> str:
    """A number with exactly `places` decimals, no exponent, no negative zero.

    Rounds half away from zero on the shortest decimal form of the value (`repr`), so 2.675
    becomes 2.68 as a person reading the number expects, on every platform.
    """
    if is_missing(value):
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(repr(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    quantised = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if quantised.is_zero():
        quantised = abs(quantised)
    return f"{quantised:f}"


def format_int(value: object) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"not a whole number: {value!r}")
    return str(int(value))  # type: ignore[call-overload]


def quote_cell(text: str) -> str:
    """RFC 4180: quote a field containing a comma, a quote, CR or LF; double embedded quotes."""
    if _NEEDS_QUOTES.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def encode_row(cells: Sequence[str]) -> str:
    """One CSV record with its CRLF terminator. Cells must already be formatted strings."""
    return ",".join(quote_cell(c) for c in cells) + CRLF


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """A whole Excel-friendly CSV file: BOM, header, rows, CRLF, UTF-8."""
    parts = [BOM, encode_row(header)]
    parts.extend(encode_row(row) for row in rows)
    return "".join(parts).encode("utf-8")
