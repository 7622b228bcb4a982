"""SQL built from the extract spec and a source mapping: ODS tables, typed casts, reject reasons.

Everything is generated from `spec.py` so a new column or rule is one edit there. Identifiers are
always double-quoted and literals single-quoted through `ident()` / `lit()`.
"""

from __future__ import annotations

from .mapping import SourceMapping
from .spec import Column, ExtractSpec

LINEAGE_COLUMNS = (
    ("_source_file", "VARCHAR"),
    ("_source_line", "BIGINT"),
    ("_load_id", "BIGINT"),
    ("_loaded_at", "TIMESTAMP"),
    ("_is_current", "BOOLEAN"),
)
SEP = "\x1f"  # between column name and reason in the packed problem string


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quoted(expr: str) -> str:
    """SQL for the value of `expr` in single quotes, as it appears in a reject reason."""
    quote = lit("'")
    return f"{quote} || {expr} || {quote}"


def _type_word(col: Column) -> str:
    return {
        "TIMESTAMP": "date-time",
        "DATE": "date",
        "INTEGER": "whole number",
    }.get(col.type, "number" if col.type.startswith("DECIMAL") else "text")


def ods_table_ddl(spec: ExtractSpec) -> str:
    cols = [f"{ident(c.name)} {c.type}" for c in spec.columns]
    if spec.customer_column:
        cols.append('"_is_orphan" BOOLEAN')
    cols += [f"{ident(n)} {t}" for n, t in LINEAGE_COLUMNS]
    return f"create table if not exists ods.{ident(spec.kind)} (\n  " + ",\n  ".join(cols) + "\n)"


def current_view_ddl(spec: ExtractSpec) -> str:
    return (
        f"create or replace view ods.{ident(spec.kind + '_current')} as "
        f"select * exclude (_is_current) from ods.{ident(spec.kind)} where _is_current"
    )


def trimmed(expr: str) -> str:
    """`trim(expr)`, computed only where it can change the value.

    DuckDB's `trim` removes the Unicode space separators (U+0020, U+00A0, U+3000, ...), never tabs
    or line breaks, and copies every value it touches: on a 10M-row extract it cost as much as
    reading the file. An ASCII value can only lose U+0020 at either end, so values without one
    there and without any non-ASCII character (`strlen` bytes = `length` characters) are returned
    as they are; every other value is trimmed. Same result as `trim(expr)`, at less than half the
    cost (tests/extracts/test_sql.py compares them).
    """
    return (
        f"case when prefix({expr}, ' ') or suffix({expr}, ' ') or strlen({expr}) <> length({expr}) "
        f"then trim({expr}) else {expr} end"
    )


def raw_expr(mapping: SourceMapping, column: str, header: tuple[str, ...]) -> str:
    """The trimmed text that feeds a canonical column (NULL when empty or not delivered)."""
    source = mapping.source_for(column, header)
    if source is not None:
        return f"nullif({trimmed(ident(source))}, '')"
    if column in mapping.constants:
        return lit(mapping.constants[column])
    return "null::varchar"


def typed_expr(mapping: SourceMapping, col: Column, raw: str) -> str:
    if col.type in ("TIMESTAMP", "DATE"):
        fmts = "[" + ", ".join(lit(f) for f in mapping.formats_for(col.name)) + "]"
        expr = f"try_strptime({raw}, {fmts})"
        return f"({expr})::date" if col.type == "DATE" else expr
    if col.type.startswith("DECIMAL") or col.type in ("INTEGER", "BIGINT", "DOUBLE"):
        value = raw
        if mapping.decimal_separator != ".":
            value = f"replace({raw}, {lit(mapping.decimal_separator)}, '.')"
        return f"try_cast({value} as {col.type})"
    return raw


def problem_expr(mapping: SourceMapping, spec: ExtractSpec) -> str:
    """A CASE giving, for the first failing check of a row, 'column<US>reason'; NULL when the row is fine.

    Evaluated over a relation that has the raw text as `"<col>__raw"` and the typed value as `"<col>"`.
    """
    whens: list[str] = []
    for col in spec.columns:
        if col.name == mapping.surrogate_key:
            continue  # computed from the other columns, never missing
        raw, typed, name = ident(col.name + "__raw"), ident(col.name), col.name
        head = lit(name + SEP)
        if col.required:
            whens.append(f"when {raw} is null then {lit(name + SEP + name + ': required value is missing')}")
        if col.type != "VARCHAR":
            fmt = ""
            if col.type in ("TIMESTAMP", "DATE"):
                fmt = " (expected " + " or ".join(mapping.formats_for(name)) + ")"
            whens.append(
                f"when {raw} is not null and {typed} is null then "
                f"{head} || {lit(name + ': ')} || {_quoted(raw)} || {lit(' is not a valid ' + _type_word(col) + fmt)}"
            )
        if col.allowed:
            allowed = ", ".join(lit(v) for v in col.allowed)
            whens.append(
                f"when {typed} is not null and {typed} not in ({allowed}) then "
                f"{head} || {lit(name + ': ')} || {_quoted(typed)} || {lit(' is not one of ' + ', '.join(col.allowed))}"
            )
        if col.min_value is not None:
            whens.append(
                f"when {typed} < {col.min_value} then "
                f"{head} || {lit(name + ': ')} || {typed}::varchar || {lit(f' is below the minimum {col.min_value:g}')}"
            )
        if col.max_value is not None:
            whens.append(
                f"when {typed} > {col.max_value} then "
                f"{head} || {lit(name + ': ')} || {typed}::varchar || {lit(f' is above the maximum {col.max_value:g}')}"
            )
        if col.pattern:
            whens.append(
                f"when {typed} is not null and not regexp_full_match({typed}, {lit(col.pattern)}) then "
                f"{head} || {lit(name + ': ')} || {_quoted(typed)} || {lit(' does not look like a valid ' + name)}"
            )
    for rule in spec.rules:
        whens.append(f"when coalesce(({rule.sql}), false) then {lit(rule.column + SEP + rule.reason)}")
    return "case\n    " + "\n    ".join(whens) + "\n  end"


def surrogate_key_expr(spec: ExtractSpec, key: str, occurrence: str) -> str:
    """A stable key for sources without one: md5 of the row's other canonical values and of its
    occurrence number among identical rows of the same file (two identical purchases stay two)."""
    parts = [f"coalesce({ident(c.name)}::varchar, chr(0))" for c in spec.columns if c.name != key]
    return "md5(concat_ws(chr(31), " + ", ".join(parts) + f", {occurrence}::varchar))"


def key_match(spec: ExtractSpec, left: str, right: str) -> str:
    return " and ".join(f"{left}.{ident(k)} = {right}.{ident(k)}" for k in spec.key)


def same_values(spec: ExtractSpec, left: str, right: str) -> str:
    return " and ".join(
        f"{left}.{ident(c.name)} is not distinct from {right}.{ident(c.name)}" for c in spec.columns
    )
