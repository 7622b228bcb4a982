"""The data-quality report: one self-contained HTML page per run, plus an index of runs.

Layout under the quality folder (`settings.quality_dir()`):

    index.html                      every run, newest first, with its error/warning counts
    runs/<run_id>/index.html        the run's page: each kind, each file, each expectation, observed values
    runs/<run_id>/<kind>.json       the validation results behind it (one list per extract kind)

Each asset check records its kind's results and re-renders the run page, so the page fills in as
the run's checks complete. We render our own page rather than GX Data Docs: GX's site works with an
ephemeral context but loads its styles and scripts from public CDNs and only indexes the results of
the current process, while this page opens offline and shows every file of the run.
"""

from __future__ import annotations

import fcntl
import html
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .expectations import ERROR, WARNING
from .results import ExpectationOutcome, FileValidation

_SAFE_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]+$")
INDEX_LIMIT = 500

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans SC",sans-serif;margin:2rem;color:#1f2328}
h1{font-size:1.4rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem;margin-top:1.5rem}
table{border-collapse:collapse;margin:.5rem 0;width:100%} th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top;font-size:.9rem} th{background:#f6f8fa}
.pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600} .warn{color:#9a6700;font-weight:600}
.muted{color:#656d76} code{font-size:.85rem}
"""


def run_dir(quality_dir: Path, run_id: str) -> Path:
    if not _SAFE_RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} is not safe to use as a folder name")
    return quality_dir / "runs" / run_id


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@contextmanager
def _locked(quality_dir: Path) -> Iterator[None]:
    quality_dir.mkdir(parents=True, exist_ok=True)
    with open(quality_dir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def record_validations(quality_dir: Path, run_id: str, kind: str, validations: list[FileValidation]) -> Path:
    """Store one kind's results for a run, re-render the run page and the index; returns the run page."""
    folder = run_dir(quality_dir, run_id)
    with _locked(quality_dir):
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / f"{kind}.json", json.dumps([v.to_json() for v in validations], indent=1))
        by_kind = load_run(quality_dir, run_id)
        page = folder / "index.html"
        _write_atomic(page, render_run_page(run_id, by_kind))
        _write_atomic(folder / "summary.json", json.dumps(_summary(run_id, by_kind)))
        _write_atomic(quality_dir / "index.html", render_index(quality_dir))
    return page


def load_run(quality_dir: Path, run_id: str) -> dict[str, list[FileValidation]]:
    folder = run_dir(quality_dir, run_id)
    out: dict[str, list[FileValidation]] = {}
    for path in sorted(folder.glob("*.json")):
        if path.name == "summary.json":
            continue
        out[path.stem] = [FileValidation.from_json(v) for v in json.loads(path.read_text(encoding="utf-8"))]
    return out


def _summary(run_id: str, by_kind: dict[str, list[FileValidation]]) -> dict:
    files = [v for vs in by_kind.values() for v in vs]
    return {
        "run_id": run_id,
        "updated_at": datetime.now().isoformat(timespec="seconds"),
        "kinds": sorted(by_kind),
        "files": len(files),
        "errors": sum(len(v.errors) for v in files),
        "warnings": sum(len(v.warnings) for v in files),
        "files_with_errors": sum(1 for v in files if v.errors),
    }


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _status(o: ExpectationOutcome) -> str:
    if o.success:
        return '<span class="pass">pass</span>'
    return '<span class="fail">FAIL</span>' if o.severity == ERROR else '<span class="warn">warning</span>'


def _file_section(v: FileValidation) -> str:
    f = v.file
    head = (
        f'<h3>{_e(f.source_file)}</h3><p class="muted">load {f.load_id} &middot; extract date '
        f"{_e(f.extract_date or 'unknown')} &middot; {f.rows_read:,} rows read, {f.rows_loaded:,} loaded, "
        f"{f.rows_rejected:,} rejected, {f.rows_duplicate:,} duplicates &middot; "
        f"{len(v.errors)} error(s), {len(v.warnings)} warning(s)</p>"
    )
    order = {(False, ERROR): 0, (False, WARNING): 1}
    rows = []
    for o in sorted(v.outcomes, key=lambda o: order.get((o.success, o.severity), 2)):
        examples = ", ".join(o.examples)
        rows.append(
            f"<tr><td>{_status(o)}</td><td>{_e(o.severity)}</td><td>{_e(o.description)}<br>"
            f'<code class="muted">{_e(o.expectation)}</code></td><td>{_e(o.observed)}</td>'
            f"<td>{_e(examples)}</td></tr>"
        )
    table = (
        "<table><tr><th>result</th><th>severity</th><th>expectation</th><th>observed</th>"
        "<th>examples of unexpected values</th></tr>" + "".join(rows) + "</table>"
    )
    return head + table


def render_run_page(run_id: str, by_kind: dict[str, list[FileValidation]]) -> str:
    summary_rows = []
    sections = []
    for kind, validations in sorted(by_kind.items()):
        errors = sum(len(v.errors) for v in validations)
        warnings = sum(len(v.warnings) for v in validations)
        status = (
            '<span class="fail">FAILED</span>'
            if errors
            else ('<span class="warn">warnings</span>' if warnings else '<span class="pass">passed</span>')
        )
        summary_rows.append(
            f'<tr><td><a href="#{_e(kind)}">{_e(kind)}</a></td><td>{len(validations)}</td>'
            f"<td>{errors}</td><td>{warnings}</td><td>{status}</td></tr>"
        )
        body = (
            "".join(_file_section(v) for v in validations)
            or '<p class="muted">No new files of this kind in the run.</p>'
        )
        sections.append(f'<h2 id="{_e(kind)}">{_e(kind)}</h2>{body}')
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Data quality: run {_e(run_id)}</title><style>{CSS}</style></head><body>"
        f'<p><a href="../../index.html">All runs</a></p><h1>Data quality of the files loaded by run {_e(run_id)}</h1>'
        f'<p class="muted">Updated {datetime.now():%Y-%m-%d %H:%M:%S}. Failed <b>errors</b> block the marts; '
        "<b>warnings</b> do not.</p>"
        "<table><tr><th>extract</th><th>files</th><th>failed errors</th><th>failed warnings</th><th>status</th></tr>"
        + "".join(summary_rows)
        + "</table>"
        + "".join(sections)
        + "</body></html>"
    )


def render_index(quality_dir: Path) -> str:
    summaries = []
    for path in (quality_dir / "runs").glob("*/summary.json"):
        try:
            summaries.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    summaries.sort(key=lambda s: s.get("updated_at", ""), reverse=True)
    rows = []
    for s in summaries[:INDEX_LIMIT]:
        rid = s["run_id"]
        status = (
            '<span class="fail">FAILED</span>'
            if s["errors"]
            else ('<span class="warn">warnings</span>' if s["warnings"] else '<span class="pass">passed</span>')
        )
        rows.append(
            f'<tr><td><a href="runs/{_e(rid)}/index.html">{_e(rid)}</a></td><td>{_e(s["updated_at"])}</td>'
            f"<td>{_e(', '.join(s['kinds']))}</td><td>{s['files']}</td><td>{s['errors']}</td>"
            f"<td>{s['warnings']}</td><td>{status}</td></tr>"
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Data quality</title>'
        f"<style>{CSS}</style></head><body><h1>Data quality of loaded extract files</h1>"
        "<table><tr><th>run</th><th>updated</th><th>extracts</th><th>files</th><th>failed errors</th>"
        "<th>failed warnings</th><th>status</th></tr>" + "".join(rows) + "</table></body></html>"
    )
