"""File-level checks before any row is parsed: identity, compression, encoding, header.

Everything here streams: a file is read in 1 MiB chunks, so memory does not grow with file size.
A file that cannot be read at all raises `FileProblem` with a message that names the file, the
line where it can and what to change. Files in legacy encodings (GB18030/GBK, Latin-1) are
transcoded to a UTF-8 scratch copy that DuckDB then reads; UTF-8 files (with or without a BOM,
plain or gzip) are read by DuckDB directly.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from .mapping import SourceMapping

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = codecs.BOM_UTF8
_OTHER_DELIMITERS = (",", ";", "\t", "|")


class FileProblem(Exception):
    """The file cannot be loaded at all. `str(exc)` is a complete, user-facing message."""

    def __init__(self, file: str, problem: str, line: int | None = None) -> None:
        where = f"{file}, line {line}" if line else file
        super().__init__(f"{where}: {problem}")
        self.file = file
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class InboxFile:
    path: Path
    rel: str
    size: int
    mtime_ns: int
    sha256: str
    extract_date: date | None


@dataclass(frozen=True)
class PreparedFile:
    file: InboxFile
    read_path: Path
    encoding: str
    compressed: bool
    header: tuple[str, ...]
    data_lines: int
    transcoded: bool
    note: str | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def extract_date_from_name(name: str, pattern: str) -> date | None:
    match = re.search(pattern, name)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _chunks(path: Path, rel: str, compressed: bool) -> Iterator[bytes]:
    """Decompressed bytes of the file, chunk by chunk; a damaged gzip is a FileProblem."""
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise FileProblem(
            rel,
            f"the gzip stream is damaged or truncated ({exc}); nothing was loaded, ask the sender to re-deliver",
        ) from exc


def _line_of(prefix_newlines: int) -> int:
    return prefix_newlines + 1


def _check_utf8(file: InboxFile, compressed: bool) -> tuple[int, bool, bytes]:
    """Validate UTF-8 while counting newlines. Returns (newlines, ends_with_newline, first_bytes)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    last = b""
    head = b""
    saw_multibyte = False  # valid UTF-8 beyond ASCII before any error: the file *is* UTF-8
    for chunk in _chunks(file.path, file.rel, compressed):
        if len(head) < 65536:
            head += chunk[: 65536 - len(head)]
        if not chunk.isascii():
            try:
                decoder.decode(chunk)
                saw_multibyte = True
            except UnicodeDecodeError as exc:
                line = _line_of(newlines + chunk.count(b"\n", 0, exc.start))
                saw_multibyte = saw_multibyte or not chunk[: exc.start].isascii()
                raise _EncodingMismatch(line, exc, saw_multibyte) from exc
        newlines += chunk.count(b"\n")
        last = chunk[-1:]
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _EncodingMismatch(_line_of(newlines), exc, saw_multibyte) from exc
    return newlines, last == b"\n", head


class _EncodingMismatch(Exception):
    def __init__(self, line: int, exc: UnicodeDecodeError, saw_multibyte: bool = False) -> None:
        super().__init__(str(exc))
        self.line = line
        self.exc = exc
        self.saw_multibyte = saw_multibyte


def _transcode(file: InboxFile, compressed: bool, encoding: str, scratch: Path) -> tuple[Path, int, bool, bytes]:
    """Decode `encoding` strictly and write UTF-8 to a scratch file. Returns (path, newlines, ends_nl, head)."""
    scratch.mkdir(parents=True, exist_ok=True)
    out_path = scratch / (file.sha256[:16] + ".csv")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    newlines = 0
    last = ""
    head = b""
    with out_path.open("w", encoding="utf-8", newline="") as out:
        for chunk in _chunks(file.path, file.rel, compressed):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                out.close()
                out_path.unlink(missing_ok=True)
                line = _line_of(newlines + chunk.count(b"\n", 0, exc.start))
                raise _EncodingMismatch(line, exc) from exc
            if not head and text.startswith("\ufeff"):
                text = text[1:]
            out.write(text)
            if len(head) < 65536:
                head += text.encode("utf-8")[: 65536 - len(head)]
            newlines += text.count("\n")
            if text:
                last = text[-1]
        tail = decoder.decode(b"", final=True)
        out.write(tail)
    return out_path, newlines, (tail or last).endswith("\n"), head


def _first_line(head: bytes) -> str:
    text = head.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def _parse_header(line: str, mapping: SourceMapping, rel: str = "") -> tuple[str, ...]:
    try:
        reader = csv.reader(io.StringIO(line), delimiter=mapping.delimiter, quotechar=mapping.quote or None)
        return tuple(field.strip() for field in next(reader, []))
    except csv.Error as exc:
        raise FileProblem(rel, f"the header line cannot be read as CSV ({exc})", line=1) from exc


def _check_header(file: InboxFile, first: str, mapping: SourceMapping) -> tuple[str, ...]:
    if mapping.header:
        header = _parse_header(first, mapping, file.rel)
    else:
        header = tuple(mapping.source_columns or ())
        fields = _parse_header(first, mapping, file.rel)
        if len(fields) != len(header):
            raise FileProblem(
                file.rel,
                f"has {len(fields)} fields but {mapping.origin} lists {len(header)} source_columns",
                line=1,
            )
        return header
    expected = len(mapping.spec.columns)
    if len(header) <= 1 and expected > 1:
        guesses = [d for d in _OTHER_DELIMITERS if d != mapping.delimiter and first.count(d) >= 2]
        hint = (
            f"; the header looks {guesses[0]!r}-separated: set `delimiter: {guesses[0]!r}` in {mapping.origin}"
            if guesses
            else ""
        )
        raise FileProblem(
            file.rel,
            f"the header has a single column with the configured delimiter {mapping.delimiter!r}{hint}",
            line=1,
        )
    blanks = [i + 1 for i, name in enumerate(header) if not name]
    if blanks:
        raise FileProblem(file.rel, f"header column(s) {blanks} have no name", line=1)
    counts = Counter(mapping.canonical_name(h) for h in header)
    dupes = sorted(name for name, n in counts.items() if n > 1)
    if dupes:
        raise FileProblem(file.rel, f"column(s) {dupes} appear more than once in the header", line=1)
    missing = mapping.missing_columns(header)
    if missing:
        raise FileProblem(
            file.rel,
            f"missing required column(s) {', '.join(missing)} (the header has: {', '.join(header)}); "
            f"add them to the extract or map source columns with `rename:` in {mapping.origin}",
            line=1,
        )
    return header


FUTURE_TOLERANCE_DAYS = 1


def prepare(file: InboxFile, mapping: SourceMapping, scratch: Path, today: date | None = None) -> PreparedFile:
    """Check that `file` can be parsed and return how DuckDB should read it."""
    today = today or date.today()
    if file.extract_date is not None and (file.extract_date - today).days > FUTURE_TOLERANCE_DAYS:
        raise FileProblem(
            file.rel,
            f"the extract date in the file name, {file.extract_date.isoformat()}, is in the future; "
            "check the name (it would move every time-relative figure forward)",
        )
    if file.size == 0:
        raise FileProblem(file.rel, "the file is empty (0 bytes); a file with no rows still needs its header line")
    compressed = _is_gzip(file.path)
    read_path = file.path
    transcoded = False
    encoding = mapping.encoding
    try:
        if encoding in ("auto", "utf-8"):
            try:
                newlines, ends_nl, head = _check_utf8(file, compressed)
                encoding = "utf-8"
            except _EncodingMismatch as utf8_error:
                if mapping.encoding == "utf-8" or utf8_error.saw_multibyte:
                    raise
                try:
                    read_path, newlines, ends_nl, head = _transcode(file, compressed, "gb18030", scratch)
                except _EncodingMismatch:
                    raise utf8_error from None
                encoding, transcoded = "gb18030", True
        else:
            read_path, newlines, ends_nl, head = _transcode(file, compressed, encoding, scratch)
            transcoded = True
    except _EncodingMismatch as exc:
        bad = exc.exc.object[exc.exc.start : exc.exc.start + 4].hex(" ")
        declared = mapping.encoding
        if exc.saw_multibyte:
            hint = "the rest of the file is UTF-8, so this looks like a damaged or mixed-encoding line; fix it and re-deliver"
        elif declared == "auto":
            hint = "it is not UTF-8 or GB18030 either; declare the real `encoding:` in " + mapping.origin
        else:
            hint = f"declare the real encoding with `encoding:` in {mapping.origin} (e.g. gb18030)"
        raise FileProblem(
            file.rel, f"is not valid {declared if declared != 'auto' else 'UTF-8'} (bytes {bad}); {hint}", line=exc.line
        ) from exc
    total_lines = newlines + (0 if ends_nl else 1)
    first = _first_line(head)
    if not first.strip():
        raise FileProblem(file.rel, "the first line is blank; expected the header line", line=1)
    header = _check_header(file, first, mapping)
    data_lines = total_lines - (1 if mapping.header else 0)
    note = "encoding detected as GB18030 (no valid UTF-8) and transcoded" if mapping.encoding == "auto" and transcoded else None
    return PreparedFile(
        file=file,
        read_path=read_path,
        encoding=encoding,
        compressed=compressed and not transcoded,
        header=header,
        data_lines=data_lines,
        transcoded=transcoded,
        note=note,
    )
