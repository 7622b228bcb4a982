"""`crm-warehouse sql`: query the published marts, read-only.

The published file (settings.published_path(), marts.duckdb) is attached READ_ONLY under the name
`marts`, so `marts.dim_customers` and plain `dim_customers` both work whatever the file is called.
Without --query, a small shell reads statements ending in `;` (dot commands: .tables, .schema NAME,
.mode table|csv, .help, .quit). This module imports neither Dagster nor the warehouse code.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import click
import duckdb

from .. import settings

CATALOG = "marts"
MAX_CELL = 60
HELP = """\
Statements end with ';' and may span lines. Dot commands:
  .tables           list the published tables
  .schema NAME      columns of a table
  .mode table|csv   output format
  .published        when and by which run the marts were published
  .help             this text
  .quit             leave (or Ctrl-D)"""


def connect_published(path: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory session with the published file attached read-only as `marts` (and selected)."""
    path = path or settings.published_path()
    if not path.exists():
        raise click.ClickException(
            f"No published marts at {path}. They are published at the end of each nightly run "
            "(`crm-warehouse run`), or by hand with `crm-warehouse publish`."
        )
    con = duckdb.connect(":memory:")
    try:
        con.execute("set enable_progress_bar = false")
        con.execute(f"attach '{path.as_posix().replace(chr(39), chr(39) * 2)}' as {CATALOG} (read_only)")
        con.execute(f"use {CATALOG}")
    except duckdb.Error as exc:
        con.close()
        raise click.ClickException(f"{path}: cannot be opened read-only: {exc}") from exc
    return con


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table with a header rule and a row count."""
    cells = [[_cell(v).replace("\n", " ") for v in row] for row in rows]
    cells = [[c if len(c) <= MAX_CELL else c[: MAX_CELL - 1] + "…" for c in row] for row in cells]
    widths = [len(c) for c in columns]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float, Decimal)) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return " | ".join(parts).rstrip()

    out = [line(list(columns)), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[object]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _cell(v) for v in row])


def run_query(
    con: duckdb.DuckDBPyConnection, sql: str, fmt: str, out: TextIO, params: Sequence[object] | None = None
) -> None:
    """Execute `sql` (the last statement's result is printed) in the given format."""
    cursor = con.execute(sql, params) if params else con.execute(sql)
    if cursor.description is None:
        return
    columns = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    if fmt == "csv":
        write_csv(columns, rows, out)
    else:
        out.write(format_table(columns, rows) + "\n")


def _dot_command(con: duckdb.DuckDBPyConnection, line: str, state: dict) -> bool:
    """Handle a dot command; returns False to leave the shell."""
    parts = line.split()
    command = parts[0].lower()
    if command in (".quit", ".exit", ".q"):
        return False
    if command == ".help":
        click.echo(HELP)
    elif command == ".tables":
        run_query(
            con,
            f"select table_name from duckdb_tables() where database_name = '{CATALOG}' and schema_name = 'main' "
            "order by 1",
            "table",
            sys.stdout,
        )
    elif command == ".schema" and len(parts) == 2:
        name = parts[1].split(".")[-1]
        run_query(
            con,
            "select column_name, data_type, is_nullable from information_schema.columns "
            f"where table_catalog = '{CATALOG}' and table_name = ? order by ordinal_position",
            "table",
            sys.stdout,
            [name],
        )
    elif command == ".mode" and len(parts) == 2 and parts[1] in ("table", "csv"):
        state["format"] = parts[1]
    elif command == ".published":
        run_query(con, "select * from main._published order by table_name", "table", sys.stdout)
    else:
        click.echo(f"unknown command {line!r}; .help lists the commands", err=True)
    return True


def repl(con: duckdb.DuckDBPyConnection, fmt: str, path: Path) -> None:
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:
        pass
    click.echo(f"Published marts: {path} (read-only). End statements with ';'. .help for help, .quit to leave.")
    state = {"format": fmt}
    buffer: list[str] = []
    while True:
        try:
            line = input("marts> " if not buffer else "  ...> ")
        except EOFError:
            click.echo("")
            break
        except KeyboardInterrupt:
            click.echo("")
            buffer.clear()
            continue
        if not buffer and line.strip().startswith("."):
            if not _dot_command(con, line.strip(), state):
                break
            continue
        buffer.append(line)
        statement = "\n".join(buffer).strip()
        if not statement:
            buffer.clear()
            continue
        if not statement.endswith(";"):
            continue
        buffer.clear()
        try:
            run_query(con, statement, state["format"], sys.stdout)
        except duckdb.Error as exc:
            click.echo(f"Error: {exc}", err=True)


@click.command("sql")
@click.option("-q", "--query", "query", default=None, help="Run one query and print the result (else: a shell).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True, help="Output format."
)
def sql(query: str | None, fmt: str) -> None:
    """Query the published marts read-only (tables: marts.<name>, e.g. marts.dim_customers)."""
    path = settings.published_path()
    con = connect_published(path)
    try:
        if query is None:
            repl(con, fmt, path)
            return
        try:
            run_query(con, query, fmt, sys.stdout)
        except duckdb.Error as exc:
            raise click.ClickException(str(exc)) from exc
    finally:
        con.close()
