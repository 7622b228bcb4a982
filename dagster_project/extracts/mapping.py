"""YAML source mappings: how one company's files map onto the canonical extract formats.

A mapping per extract kind lives in `<reference>/sources/<kind>.yml`. Every key is optional; a
missing file means "the canonical format" (what the demo generator writes). Example for a
billing system that exports semicolon-separated GBK files without a transaction id:

    kind: transactions
    files: "billing/TXN_*.txt"          # glob under the inbox
    extract_date: "TXN_(\\d{8})"        # regex; group 1 is the file's extract date (YYYYMMDD)
    delimiter: ";"
    header: true                        # false: give `source_columns` in file order
    encoding: gbk                       # auto (UTF-8, else GB18030) | utf-8 | gb18030 | gbk | latin-1
    rename:                             # source column -> canonical column
      CUST_NO: customer_id
      TXN_TIME: txn_at
    formats:                            # strptime formats, per column or per type
      txn_at: ["%d/%m/%Y %H:%M"]
    constants:                          # canonical columns the source does not send
      currency: CNY
    surrogate_key: txn_id               # build txn_id as a hash of the row's fields

See docs/extracts.md for the full reference.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .spec import SPECS, ExtractSpec

DEFAULT_FORMATS: dict[str, tuple[str, ...]] = {
    "TIMESTAMP": ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"),
    "DATE": ("%Y-%m-%d",),
}
ENCODINGS = ("auto", "utf-8", "gb18030", "gbk", "latin-1")
_KNOWN_KEYS = {
    "kind",
    "files",
    "extract_date",
    "delimiter",
    "quote",
    "header",
    "source_columns",
    "encoding",
    "rename",
    "formats",
    "constants",
    "surrogate_key",
    "decimal_separator",
}


class MappingError(ValueError):
    """A source mapping that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SourceMapping:
    spec: ExtractSpec
    files: str
    extract_date: str
    delimiter: str = ","
    quote: str = '"'
    header: bool = True
    source_columns: tuple[str, ...] | None = None
    encoding: str = "auto"
    rename: dict[str, str] = field(default_factory=dict)
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    constants: dict[str, str] = field(default_factory=dict)
    surrogate_key: str | None = None
    decimal_separator: str = "."
    origin: str = "canonical default"

    @property
    def kind(self) -> str:
        return self.spec.kind

    def formats_for(self, column: str) -> tuple[str, ...]:
        col = self.spec.column(column)
        if column in self.formats:
            return self.formats[column]
        return self.formats.get(col.type, DEFAULT_FORMATS.get(col.type, ()))

    def canonical_name(self, source_column: str) -> str:
        return self.rename.get(source_column, source_column)

    def source_for(self, canonical: str, header: tuple[str, ...]) -> str | None:
        """The source column that feeds `canonical` in a file with this header, if any."""
        for src in header:
            if self.canonical_name(src) == canonical:
                return src
        return None

    def missing_columns(self, header: tuple[str, ...]) -> list[str]:
        """Required canonical columns that neither the header nor a constant/surrogate key provides."""
        provided = {self.canonical_name(h) for h in header} | set(self.constants)
        if self.surrogate_key:
            provided.add(self.surrogate_key)
        return [c.name for c in self.spec.columns if c.required and c.name not in provided]


def default_mapping(kind: str) -> SourceMapping:
    spec = SPECS[kind]
    return SourceMapping(spec=spec, files=f"{kind}/{kind}_*.csv*", extract_date=r"(\d{8})")


def load_mapping(kind: str, sources_dir: Path) -> SourceMapping:
    """The mapping for `kind`: `<sources_dir>/<kind>.yml` if present, else the canonical default."""
    path = sources_dir / f"{kind}.yml"
    if not path.exists():
        return default_mapping(kind)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise MappingError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
    return parse_mapping(kind, raw, origin=str(path))


def parse_mapping(kind: str, raw: dict[str, Any], origin: str) -> SourceMapping:
    spec = SPECS[kind]
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise MappingError(f"{origin}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KNOWN_KEYS)}")
    if raw.get("kind", kind) != kind:
        raise MappingError(f"{origin}: kind is {raw['kind']!r} but the file maps {kind!r}")
    base = default_mapping(kind)
    canonical = set(spec.column_names)

    def _str(key: str, default: str) -> str:
        value = raw.get(key, default)
        if not isinstance(value, str):
            raise MappingError(f"{origin}: {key} must be a string")
        return value

    delimiter = _str("delimiter", ",")
    if delimiter in ("\\t", "tab"):
        delimiter = "\t"
    if len(delimiter) != 1:
        raise MappingError(f"{origin}: delimiter must be one character, got {delimiter!r}")
    quote = _str("quote", '"')
    if len(quote) > 1:
        raise MappingError(f"{origin}: quote must be one character or empty, got {quote!r}")
    encoding = _str("encoding", "auto").lower().replace("_", "-")
    if encoding == "utf8":
        encoding = "utf-8"
    if encoding not in ENCODINGS:
        raise MappingError(f"{origin}: encoding {encoding!r} is not supported; use one of {ENCODINGS}")
    codecs.lookup("utf-8" if encoding == "auto" else encoding)

    rename = raw.get("rename") or {}
    if not isinstance(rename, dict):
        raise MappingError(f"{origin}: rename must map source column -> canonical column")
    for src, dst in rename.items():
        if dst not in canonical:
            raise MappingError(f"{origin}: rename {src!r} -> {dst!r}: {dst!r} is not a {kind} column")

    formats: dict[str, tuple[str, ...]] = {}
    for key, value in (raw.get("formats") or {}).items():
        if key not in canonical and key not in DEFAULT_FORMATS:
            raise MappingError(f"{origin}: formats.{key}: not a {kind} column or a type (TIMESTAMP, DATE)")
        values = (value,) if isinstance(value, str) else tuple(value)
        if not values or not all(isinstance(v, str) and "%" in v for v in values):
            raise MappingError(f"{origin}: formats.{key} must be strptime formats like '%Y-%m-%d'")
        formats[key] = values

    constants = {str(k): str(v) for k, v in (raw.get("constants") or {}).items()}
    for key in constants:
        if key not in canonical:
            raise MappingError(f"{origin}: constants.{key}: not a {kind} column")

    surrogate = raw.get("surrogate_key")
    if surrogate is not None and surrogate not in spec.key:
        raise MappingError(f"{origin}: surrogate_key must name the key column {spec.key}, got {surrogate!r}")

    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise MappingError(f"{origin}: header must be true or false")
    source_columns = raw.get("source_columns")
    if not header and not source_columns:
        raise MappingError(f"{origin}: header is false, so source_columns must list the columns in file order")
    extract_date = _str("extract_date", base.extract_date)
    try:
        if re.compile(extract_date).groups < 1:
            raise MappingError(f"{origin}: extract_date needs a capture group around the YYYYMMDD date")
    except re.error as exc:
        raise MappingError(f"{origin}: extract_date is not a valid regular expression: {exc}") from exc

    return SourceMapping(
        spec=spec,
        files=_str("files", base.files),
        extract_date=extract_date,
        delimiter=delimiter,
        quote=quote,
        header=header,
        source_columns=tuple(source_columns) if source_columns else None,
        encoding=encoding,
        rename={str(k): str(v) for k, v in rename.items()},
        formats=formats,
        constants=constants,
        surrogate_key=surrogate,
        decimal_separator=_str("decimal_separator", "."),
        origin=origin,
    )
