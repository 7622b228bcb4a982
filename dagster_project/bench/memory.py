"""Peak resident memory of this process and every process it started (dbt, say), sampled in a thread.

`RssSampler` reads `/proc/<pid>/status` of the process tree every `interval` seconds and keeps,
for each open `scope()`, the peak of the tree's summed RSS. For this process it also reads
`VmHWM` (the kernel's own high-water mark), reset when a scope opens, so a short spike between
two samples still counts; children are sampled only. Linux only: elsewhere the peaks are None.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PROC = Path("/proc")


@dataclass
class PeakRss:
    """Peaks (MiB) seen while a scope was open; None when /proc is not available."""

    tree_mb: float | None = None
    self_mb: float | None = None
    children_mb: float | None = None
    samples: int = 0

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "peak_rss_mb": _round(self.tree_mb),
            "peak_rss_self_mb": _round(self.self_mb),
            "peak_rss_children_mb": _round(self.children_mb),
            "rss_samples": self.samples,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _status_kb(pid: int, fields: tuple[str, ...]) -> dict[str, int]:
    """Selected `kB` fields of /proc/<pid>/status; empty when the process is gone."""
    out: dict[str, int] = {}
    try:
        text = (PROC / str(pid) / "status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in fields:
            out[name] = int(rest.split()[0])
    return out


def _children_of(pid: int) -> list[int]:
    """Direct children of `pid`, over all its threads (a subprocess may be started from any thread)."""
    kids: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return kids
    for task in tasks:
        try:
            kids.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return kids


def _children_by_scan(root: int) -> list[int]:
    """Fallback when /proc/<pid>/task/<tid>/children is missing: parent ids from every /proc/<pid>/stat."""
    parent: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        parent[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        found.extend(kids)
        frontier.extend(kids)
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` in the process tree."""
    own = PROC / str(pid) / "task" / str(pid) / "children"
    if not own.exists():
        return _children_by_scan(pid)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        kids = _children_of(frontier.pop())
        found.extend(kids)
        frontier.extend(kids)
    return found


def _reset_own_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0); False when not allowed."""
    try:
        (PROC / "self" / "clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """Background sampler; use as a context manager, and open one `scope()` per thing measured."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.pid = os.getpid()
        self.available = (PROC / str(self.pid) / "status").exists()
        self._scopes: list[PeakRss] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hwm_usable = False

    def __enter__(self) -> RssSampler:
        if self.available:
            self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @contextmanager
    def scope(self) -> Iterator[PeakRss]:
        """Peaks from now until the block ends (filled in as samples arrive, final on exit)."""
        peak = self.open_scope()
        try:
            yield peak
        finally:
            self.close_scope(peak)

    def open_scope(self) -> PeakRss:
        """Start a scope that `close_scope` ends (for spans that are not one block, e.g. a job's steps)."""
        peak = PeakRss()
        if not self.available:
            return peak
        self._sample()  # scopes already open keep the high-water mark reached so far
        self._hwm_usable = _reset_own_peak()
        with self._lock:
            self._scopes.append(peak)
        self._sample()
        return peak

    def close_scope(self, peak: PeakRss) -> None:
        if not self.available:
            return
        self._sample()
        with self._lock:
            if any(p is peak for p in self._scopes):
                self._scopes = [p for p in self._scopes if p is not peak]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - a sampler must never take the benchmark down
                log.debug("RSS sample failed", exc_info=True)

    def _sample(self) -> None:
        own = _status_kb(self.pid, ("VmRSS", "VmHWM"))
        if not own:
            return
        rss_mb = own.get("VmRSS", 0) / 1024
        # VmHWM catches a spike between two samples; it was reset when the newest scope opened.
        self_mb = max(rss_mb, own.get("VmHWM", 0) / 1024) if self._hwm_usable else rss_mb
        children_mb = sum(_status_kb(c, ("VmRSS",)).get("VmRSS", 0) for c in descendants(self.pid)) / 1024
        with self._lock:
            for peak in self._scopes:
                peak.samples += 1
                peak.self_mb = max(peak.self_mb or 0.0, self_mb)
                peak.children_mb = max(peak.children_mb or 0.0, children_mb)
                # The tree's peak: summed RSS of one sample, and never below this process's own peak.
                peak.tree_mb = max(peak.tree_mb or 0.0, rss_mb + children_mb, self_mb)
