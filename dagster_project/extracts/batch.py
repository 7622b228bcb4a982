"""Load one batch of prepared files of one kind into the ODS (called inside a transaction).

The steps, all in DuckDB:

1. `_checked`: parse every file with `read_csv` (all fields as text), cast to the canonical types
   and compute, per record, the first problem (column + reason) or NULL, in one pass. DuckDB keeps
   insertion order, so `rowid` is the record's position; structurally broken lines (too few or too
   many fields, a runaway quote) go to DuckDB's reject log with their record number.
2. Physical line numbers: record position + header, shifted past broken records. Files whose
   records do not match their lines (quoted line breaks, blank lines) get an exact map from
   `lines.map_records`.
3. Duplicates: a record identical (all canonical values) to a version already in the ODS, or to an
   earlier record of this batch, goes to `ods.duplicate_rows`. For kinds without `updated_at`, a
   second record with the same key but different values in one file is a conflict and is rejected.
4. Rejects (structure, value, conflict) go to `ods.rejected_rows` with the raw text of the line.
5. The rest is inserted with lineage and the orphan flag; `_is_current` is re-decided for keys that
   now have several versions.

Every persistent table receives at most one, non-empty, INSERT per batch (see `_insert_if_any`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from .lines import map_records, read_lines
from .mapping import SourceMapping
from .prepare import PreparedFile
from .spec import ExtractSpec
from .sql import SEP, ident, key_match, lit, problem_expr, raw_expr, same_values, surrogate_key_expr, typed_expr

log = logging.getLogger(__name__)

STRUCTURE_REASONS = {
    "MISSING COLUMNS": "has {found} fields, expected {expected}: the line is truncated or a field is missing",
    "TOO MANY COLUMNS": "has more than {expected} fields: an unquoted delimiter or an extra field",
    "UNQUOTED VALUE": "a quote is opened but never closed, or appears inside an unquoted field",
    "LINE SIZE OVER MAXIMUM": "the line is longer than the maximum line size",
}
TEMP_TABLES = (
    "_files", "_files_fast", "_checked", "_rej", "_rej_scan", "_srej", "_linemap", "_rejmap", "_multi",
    "_existing", "_dups", "_dups_out", "_conflicts", "_srej_out", "_rawlines", "_rejects_out", "_customers",
    "_touched", "_bulk_src",
)


@dataclass(frozen=True)
class FileCounts:
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    rows_orphan: int
    records_expected: int
    note: str | None


def drop_temps(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("drop view if exists temp._lined")
    for t in TEMP_TABLES:
        con.execute(f"drop table if exists temp.{t}")


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, names: list[str], rows: list[tuple]) -> None:
    """Insert many Python rows into columns `names` of `table` at once through Arrow (DuckDB's
    executemany runs one statement per row: about a millisecond each)."""
    if not rows:
        return
    arrow = pa.table({n: pa.array(list(c)) for n, c in zip(names, zip(*rows, strict=True), strict=True)})
    con.register("_bulk_rows", arrow)
    try:
        cols = ", ".join(ident(n) for n in names)
        con.execute(f"insert into {table} ({cols}) select {cols} from _bulk_rows")
    finally:
        con.unregister("_bulk_rows")


def _insert_if_any(con: duckdb.DuckDBPyConnection, target: str, source: str) -> int:
    """`insert into target select * from source` unless `source` (a table) is empty; returns its row count.

    Why: while building the loader on DuckDB 2.0.0 we saw an INSERT of zero rows followed, in the same
    transaction, by an INSERT of more than one row group (122,880 rows) lose the second INSERT's rows
    (optimistic writer). We could not reproduce it outside that early version of the batch, and the
    current batch does not trigger it even without this guard, so it is cheap insurance rather than a
    proven need. tests/extracts/test_loader.py::test_many_rows_in_one_batch_reconcile checks the
    many-row case. So each table gets at most one non-empty INSERT per batch.
    """
    n = int(con.execute(f"select count(*) from {source}").fetchone()[0])
    if n:
        con.execute(f"insert into {target} select * from {source}")
    return n


class _Timer:
    """Debug-logs how long each step of a batch takes."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.t = time.perf_counter()

    def step(self, name: str) -> None:
        now = time.perf_counter()
        log.debug("%s: %s took %.2fs", self.label, name, now - self.t)
        self.t = now


def _read_csv_options(mapping: SourceMapping, header: tuple[str, ...], compressed: bool) -> str:
    columns = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in header) + "}"
    quote = lit(mapping.quote) if mapping.quote else "''"
    # compression from the file's content (prepare.py), never from its name: a gzip file named
    # .csv, or a plain file named .csv.gz, must still be read as what it is
    return (
        f"compression = {lit('gzip' if compressed else 'none')}, "
        f"columns = {columns}, header = {str(mapping.header).lower()}, delim = {lit(mapping.delimiter)}, "
        f"quote = {quote}, escape = {quote}, auto_detect = false, filename = '__file', "
        "store_rejects = true, ignore_errors = true, rejects_table = '_rej', rejects_scan = '_rej_scan', "
        "null_padding = false, max_line_size = 10000000"
    )


def load_batch(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, batch: list[PreparedFile], load_ids: list[int]
) -> list[FileCounts]:
    """Load `batch` (files sharing one header layout); returns counts per file, in batch order."""
    spec = mapping.spec
    header = batch[0].header
    header_lines = 1 if mapping.header else 0
    timer = _Timer(f"{spec.kind} batch of {len(batch)} file(s)")
    drop_temps(con)
    con.execute("create temp table _files (read_path VARCHAR, rel VARCHAR, ord INTEGER, load_id BIGINT)")
    insert_rows(
        con,
        "_files",
        ["read_path", "rel", "ord", "load_id"],
        [(p.read_path.as_posix(), p.file.rel, i, load_ids[i]) for i, p in enumerate(batch)],
    )
    _create_checked(con, mapping, batch, header)
    timer.step("parse, cast and check")

    con.execute(
        """create temp table _srej as
           select s.file_path as read_path, e.line as rec_line, e.error_type::varchar as error_type,
                  e.csv_line, e.error_message, e.column_name,
                  row_number() over (partition by s.file_path order by e.line) - 1 as rej_idx
           from (  -- DuckDB logs one error per missing column; keep one per record
               select * from _rej qualify row_number() over (partition by scan_id, file_id, line order by column_idx) = 1
           ) e join _rej_scan s using (scan_id, file_id)"""
    )
    counts = {
        row[0]: (int(row[1]), int(row[2]), int(row[3]))
        for row in con.execute(
            """select f.read_path, coalesce(g.n, 0), coalesce(g.min_rowid, 0), coalesce(r.n, 0)
               from _files f
               left join (select __file, count(*) n, min(rowid) min_rowid from _checked group by 1) g
                 on g.__file = f.read_path
               left join (select read_path, count(*) n from _srej group by 1) r on r.read_path = f.read_path"""
        ).fetchall()
    }
    notes, expected = _map_lines(con, mapping, batch, counts)
    _create_lined_view(con, header_lines, has_structure_rejects=any(c[2] for c in counts.values()))
    timer.step("line numbers")

    _find_duplicates(con, spec, against_ods=not mapping.surrogate_key)
    timer.step("duplicates")
    _insert_rejects(con, mapping, batch, len(header))
    timer.step("rejects")
    _insert_new_rows(con, spec)
    timer.step("insert")
    _supersede(con, spec)
    if mapping.surrogate_key:
        _replace_same_extract_date(con, spec, batch, load_ids)
    timer.step("supersede")

    lo, hi = min(load_ids), max(load_ids)
    table = f"ods.{ident(spec.kind)}"
    loaded = dict(con.execute(f"select _load_id, count(*) from {table} where _load_id between ? and ? group by 1", [lo, hi]).fetchall())
    orphans = {}
    if spec.customer_column:
        orphans = dict(
            con.execute(
                f"select _load_id, count(*) from {table} where _load_id between ? and ? and _is_orphan group by 1", [lo, hi]
            ).fetchall()
        )
    rejected = dict(con.execute("select load_id, count(*) from _rejects_out group by 1").fetchall())
    duplicates = dict(con.execute("select _load_id, count(*) from _dups group by 1").fetchall())
    results = []
    for i, p in enumerate(batch):
        good, _, malformed = counts[p.read_path.as_posix()]
        lid = load_ids[i]
        results.append(
            FileCounts(
                rows_read=good + malformed,
                rows_loaded=int(loaded.get(lid, 0)),
                rows_rejected=int(rejected.get(lid, 0)),
                rows_duplicate=int(duplicates.get(lid, 0)),
                rows_orphan=int(orphans.get(lid, 0)),
                records_expected=expected[p.read_path.as_posix()],
                note="; ".join(n for n in (p.note, notes.get(p.read_path.as_posix())) if n) or None,
            )
        )
    drop_temps(con)
    return results


def _create_checked(con, mapping: SourceMapping, batch: list[PreparedFile], header: tuple[str, ...]) -> None:
    spec = mapping.spec
    paths = "[" + ", ".join(lit(p.read_path.as_posix()) for p in batch) + "]"
    raws = ",\n               ".join(
        f"{raw_expr(mapping, c.name, header)} as {ident(c.name + '__raw')}" for c in spec.columns
    )
    typed = ",\n               ".join(
        f"{typed_expr(mapping, c, ident(c.name + '__raw'))} as {ident(c.name)}" for c in spec.columns
    )
    columns = ", ".join(ident(c.name) for c in spec.columns)
    con.execute(
        f"""
        create temp table _checked as
        with raw as (
            select __file,
               {raws}
            from read_csv({paths}, {_read_csv_options(mapping, header, batch[0].compressed)})
        ),
        typed as (
            select *,
               {typed}
            from raw
        )
        select __file, {columns}, {problem_expr(mapping, spec)} as _problem
        from typed
        """
    )
    if mapping.surrogate_key:
        # After the table exists: a window inside the CREATE would reorder rows, and a row's position
        # (rowid) is its line number. The key is the md5 of the row's values and its occurrence
        # number among identical rows of the file.
        key = mapping.surrogate_key
        others = ", ".join(ident(c.name) for c in spec.columns if c.name != key)
        occurrence = f"row_number() over (partition by __file, {others} order by rowid)"
        con.execute(
            f"""update _checked set {ident(key)} = k.sk
                from (select rowid as rid, {surrogate_key_expr(spec, key, occurrence)} as sk from _checked) as k
                where _checked.rowid = k.rid"""
        )


def _map_lines(con, mapping: SourceMapping, batch: list[PreparedFile], counts) -> tuple[dict[str, str], dict[str, int]]:
    """Decide per file whether records are lines (fast) or need an exact map; fill _linemap/_rejmap.

    Also returns, per file, the number of records an independent count finds (the physical data
    lines, or the csv module's records where those differ), for the reconciliation check.
    """
    con.execute("create temp table _files_fast (read_path VARCHAR, fast BOOLEAN, min_rowid BIGINT)")
    con.execute("create temp table _linemap (read_path VARCHAR, idx BIGINT, line BIGINT, end_line BIGINT)")
    con.execute("create temp table _rejmap (read_path VARCHAR, idx BIGINT, line BIGINT, end_line BIGINT)")
    fast_rows, good_rows, bad_rows = [], [], []
    notes: dict[str, str] = {}
    expected: dict[str, int] = {}
    for p in batch:
        key = p.read_path.as_posix()
        good, min_rowid, malformed = counts[key]
        fast = good + malformed == p.data_lines
        fast_rows.append((key, fast, min_rowid))
        expected[key] = p.data_lines
        if not fast:
            m = map_records(p, mapping, good, malformed)
            good_rows += [(key, i, s, e) for i, (s, e) in enumerate(m.good)]
            bad_rows += [(key, i, s, e) for i, (s, e) in enumerate(m.malformed)]
            expected[key] = m.records
            if m.note:
                notes[key] = m.note
    insert_rows(con, "_files_fast", ["read_path", "fast", "min_rowid"], fast_rows)
    insert_rows(con, "_linemap", ["read_path", "idx", "line", "end_line"], good_rows)
    insert_rows(con, "_rejmap", ["read_path", "idx", "line", "end_line"], bad_rows)
    return notes, expected


def _create_lined_view(con, header_lines: int, has_structure_rejects: bool) -> None:
    """`_lined`: `_checked` plus record id, load id, file and physical line number."""
    if has_structure_rejects:
        # Good record k of a file sits after the broken records that precede it: shift k by their count.
        steps = f""",
        steps as (
            select read_path, rec_line - 1 - {header_lines} - rej_idx as gb, max(rej_idx) + 1 as shift
            from _srej group by all
        )"""
        shift_join = "asof left join steps st on b.__file = st.read_path and b._k >= st.gb"
        shift = "coalesce(st.shift, 0)"
    else:
        steps, shift_join, shift = "", "", "0"
    con.execute(
        f"""
        create temp view _lined as
        with base as (
            select c.rowid as _rid, c.rowid - ff.min_rowid as _k, ff.fast as _fast, c.*
            from _checked c join _files_fast ff on ff.read_path = c.__file
        ){steps}
        select b._rid, fi.ord as _ord, fi.load_id as _load_id, fi.rel as _file,
               case when b._fast then b._k + {shift} + 1 + {header_lines} else lm.line end as _line,
               case when b._fast then null else lm.end_line end as _end_line,
               b.* exclude (_rid, _k, _fast, __file)
        from base b
        join _files fi on fi.read_path = b.__file
        {shift_join}
        left join _linemap lm on not b._fast and lm.read_path = b.__file and lm.idx = b._k
        """
    )


def _find_duplicates(con, spec: ExtractSpec, against_ods: bool = True) -> None:
    """Route repeats of an existing version to `_dups`; for kinds without updated_at, flag key conflicts.

    Without a natural key (`against_ods` false: surrogate keys) rows are not compared with the ODS: a
    re-delivery replaces the earlier delivery of its extract date instead (`_replace_same_extract_date`).
    """
    keys = ", ".join(ident(k) for k in spec.key)
    cols = ", ".join(ident(c.name) for c in spec.columns)
    nk = " || '|' || ".join(f"coalesce(c.{ident(k)}::varchar, '')" for k in spec.key)
    con.execute(
        f"create temp table _multi as select {keys} from _checked where _problem is null group by all having count(*) > 1"
    )
    # The batch's key range as constants: the scan of the ODS then skips row groups whose min/max
    # (zone map) lie outside it instead of reading every stored key of a growing table on every
    # batch. Only a necessary condition for a key match, so the same rows qualify.
    bounds = con.execute(
        "select " + ", ".join(f"min({ident(k)}), max({ident(k)})" for k in spec.key)
        + " from _checked where _problem is null"
    ).fetchall()[0]
    where = [f"o.{ident(k)} between ? and ?" for k in spec.key]
    # Kinds with updated_at: a version equal to any stored version is a duplicate (an old version
    # re-sent never wins over a newer updated_at). Kinds without: only the current version counts,
    # so a correction that returns to an earlier value (100 -> 900 -> 100) becomes current again.
    if not spec.updated_at:
        where.append("o._is_current")
    if not against_ods:
        where.append("false")
    con.execute(
        f"""create temp table _existing as
            select o.* from ods.{ident(spec.kind)} o
            semi join (select {keys} from _checked where _problem is null) k on {key_match(spec, 'o', 'k')}
            where {" and ".join(where)}""",
        list(bounds),
    )
    con.execute(
        f"""create temp table _dups as
            with of_existing as (   -- the same version is already in the ODS
                select c._rid, c._load_id, c._file, c._line, {nk} as natural_key,
                       e._source_file as of_file, e._source_line as of_line
                from _lined c
                join (
                    select *, row_number() over (partition by {cols} order by _load_id, _source_line) as _r
                    from _existing
                ) e on e._r = 1 and {same_values(spec, 'c', 'e')}
                where c._problem is null
            ),
            in_batch as (           -- the same version appears earlier in this batch
                select c._rid, c._load_id, c._file, c._line, {nk} as natural_key, c.first_file, c.first_line
                from (
                    select *, first_value(_file) over w as first_file, first_value(_line) over w as first_line,
                           row_number() over w as _r
                    from _lined l semi join _multi m on {key_match(spec, 'l', 'm')}
                    where _problem is null
                    window w as (partition by {cols} order by _ord, _line)
                ) c
                where c._r > 1
            )
            select * from of_existing
            union all
            select i.* from in_batch i anti join of_existing x on x._rid = i._rid"""
    )
    con.execute(
        f"""create temp table _dups_out as
            select _load_id, {lit(spec.kind)}, _file, _line, natural_key, of_file, of_line from _dups"""
    )
    if _insert_if_any(con, "ods.duplicate_rows", "_dups_out"):
        con.execute("update _checked set _problem = '__dup' where rowid in (select _rid from _dups)")
    if spec.updated_at is None:
        con.execute(
            f"""create temp table _conflicts as
                select c._rid,
                       {lit(spec.key[0] + SEP + spec.key[0] + ' ')} || {nk} || ' already appears on line '
                         || c.first_line || ' of this file with different values' as problem
                from (
                    select *, first_value(_line) over w as first_line, row_number() over w as _r
                    from _lined l semi join _multi m on {key_match(spec, 'l', 'm')}
                    where _problem is null
                    window w as (partition by _load_id, {keys} order by _line)
                ) c
                where c._r > 1"""
        )
        con.execute("update _checked set _problem = d.problem from _conflicts d where _checked.rowid = d._rid")


def _structure_reason(error_type: str, message: str | None, expected: int) -> str:
    template = STRUCTURE_REASONS.get(error_type)
    if not template:
        return (message or error_type).splitlines()[0]
    found = re.search(r"Found:\s*(\d+)", message or "")
    return template.format(found=found.group(1) if found else "fewer", expected=expected)


def _insert_rejects(con, mapping: SourceMapping, batch: list[PreparedFile], n_fields: int) -> None:
    """Structural rejects (DuckDB's reject log) plus value and conflict rejects, each with its raw text."""
    kind = mapping.kind
    structural = con.execute(
        """select f.load_id, f.rel, case when ff.fast then s.rec_line + 0 else rm.line end,
                  s.column_name, s.error_type, s.error_message, s.csv_line
           from _srej s join _files f on f.read_path = s.read_path
           join _files_fast ff on ff.read_path = s.read_path
           left join _rejmap rm on rm.read_path = s.read_path and rm.idx = s.rej_idx"""
    ).fetchall()
    con.execute(
        "create temp table _srej_out (load_id BIGINT, source_file VARCHAR, source_line BIGINT, "
        "column_name VARCHAR, reason VARCHAR, raw_text VARCHAR)"
    )
    insert_rows(
        con,
        "_srej_out",
        ["load_id", "source_file", "source_line", "column_name", "reason", "raw_text"],
        [
            (lid, rel, line, column, _structure_reason(etype, msg, n_fields), (raw or "").rstrip("\r\n"))
            for lid, rel, line, column, etype, msg, raw in structural
        ],
    )
    bad = con.execute(
        "select _file, _line, _end_line from _lined where _problem is not null and _problem <> '__dup'"
    ).fetchall()
    wanted: dict[str, dict[int, int]] = {}
    for rel, line, end in bad:
        if line is not None:
            wanted.setdefault(rel, {})[line] = end or line
    con.execute("create temp table _rawlines (rel VARCHAR, line BIGINT, text VARCHAR)")
    texts = [(p.file.rel, n, t) for p in batch if p.file.rel in wanted for n, t in read_lines(p, wanted[p.file.rel])]
    insert_rows(con, "_rawlines", ["rel", "line", "text"], texts)
    con.execute(
        f"""create temp table _rejects_out as
            select load_id, {lit(kind)} as kind, source_file, source_line, column_name, reason, raw_text,
                   'structure' as error_type, now()::timestamp as rejected_at
            from _srej_out
            union all
            select c._load_id, {lit(kind)}, c._file, c._line,
                   split_part(c._problem, chr(31), 1), split_part(c._problem, chr(31), 2), r.text,
                   case when c._problem like '%already appears on line%of this file with different values'
                        then 'conflict' else 'value' end,
                   now()::timestamp
            from _lined c left join _rawlines r on r.rel = c._file and r.line = c._line
            where c._problem is not null and c._problem <> '__dup'"""
    )
    _insert_if_any(con, "ods.rejected_rows", "_rejects_out")


def _insert_new_rows(con, spec: ExtractSpec) -> None:
    cols = ", ".join(ident(c.name) for c in spec.columns)
    orphan = ""
    if spec.customer_column:
        cc = ident(spec.customer_column)
        con.execute("create temp table _customers as select distinct customer_id from ods.customers")
        orphan = f", ({cc} is not null and {cc} not in (select customer_id from _customers)) as _is_orphan"
    if con.execute("select count(*) from _checked where _problem is null").fetchone()[0]:
        con.execute(
            f"""insert into ods.{ident(spec.kind)}
                select {cols}{orphan}, _file, _line, _load_id, now()::timestamp, true
                from _lined where _problem is null"""
        )


def _replace_same_extract_date(con, spec: ExtractSpec, batch: list[PreparedFile], load_ids: list[int]) -> None:
    """Sources without a natural key: a delivery replaces earlier deliveries of the same extract date.

    Rows of earlier loads (and of earlier files of this batch) with the same extract date stop being
    current; files without an extract date in their name replace nothing.
    """
    latest: dict = {}
    for p, load_id in zip(batch, load_ids, strict=True):
        if p.file.extract_date is not None:
            latest[p.file.extract_date] = load_id  # the batch is in delivery order: the last one wins
    if not latest:
        return
    marks = ", ".join("?" for _ in latest)
    earlier = [row[0] for row in con.execute(
        f"select load_id from ods.load_log where kind = ? and status = 'loaded' and extract_date in ({marks})",
        [spec.kind, *latest],
    ).fetchall()]
    within = [lid for p, lid in zip(batch, load_ids, strict=True)
              if p.file.extract_date in latest and latest[p.file.extract_date] != lid]
    demoted = earlier + within
    if demoted:
        con.execute(
            f"update ods.{ident(spec.kind)} set _is_current = false "
            f"where _is_current and _load_id in ({', '.join(str(int(d)) for d in demoted)})"
        )


def _supersede(con, spec: ExtractSpec) -> None:
    """Re-decide `_is_current` for keys that now have more than one version."""
    keys = ", ".join(ident(k) for k in spec.key)
    con.execute(
        f"create temp table _touched as select distinct {keys} from (select {keys} from _multi union all select {keys} from _existing)"
    )
    if not con.execute("select count(*) from _touched").fetchone()[0]:
        return
    order = (f"{ident(spec.updated_at)} desc nulls last, " if spec.updated_at else "") + "_load_id desc, _source_line desc"
    table = f"ods.{ident(spec.kind)}"
    con.execute(
        f"""update {table} as t set _is_current = (r._rn = 1)
            from (
                select _load_id, _source_line, row_number() over (partition by {keys} order by {order}) as _rn
                from {table} o semi join _touched k on {key_match(spec, 'o', 'k')}
            ) r
            where t._load_id = r._load_id and t._source_line = r._source_line
              and t._is_current is distinct from (r._rn = 1)"""
    )
