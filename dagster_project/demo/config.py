"""Settings of one demo-data run and the summary it returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

# A fixed default, never "today": the same arguments must always give the same bytes.
DEFAULT_END_DATE = date(2026, 11, 21)
ENCODINGS = ("utf-8", "gb18030")
# Customer ids are C + 8 digits; ids from MAX_CUSTOMERS on are reserved for "unknown customer" defects.
MAX_CUSTOMERS = 50_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """One demo-data run.

    `customers` is the total number of customers over the period: about 70% exist on the first
    day, the rest sign up during it. Files cover the `days` days ending at `end_date`.
    """

    out_dir: Path
    truth_dir: Path
    customers: int = 20_000
    days: int = 540
    seed: int = 42
    end_date: date = DEFAULT_END_DATE
    dirty_rate: float = 0.0
    encoding: str = "utf-8"
    gzip: bool = False
    # Remove extract files of an earlier run (same naming pattern) so the folder holds exactly this run.
    replace_existing: bool = True

    def __post_init__(self) -> None:
        if not 10 <= self.customers <= MAX_CUSTOMERS:
            raise ValueError(f"customers must be between 10 and {MAX_CUSTOMERS:,}, got {self.customers}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        if not 0.0 <= self.dirty_rate <= 0.5:
            raise ValueError(f"dirty_rate must be between 0 and 0.5, got {self.dirty_rate}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed}")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


@dataclass
class GenerationSummary:
    """What a run wrote. `rows` counts data rows per kind as written (duplicated rows included)."""

    out_dir: Path
    truth_dir: Path
    start_date: date
    end_date: date
    files: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    bytes_written: int = 0
    defects: dict[str, int] = field(default_factory=dict)
    customers_initial: int = 0
    customers_new: int = 0
    churned_closed: int = 0
    churned_silent: int = 0
    annual_churn_rate: float = 0.0
    snapshot_rows: int = 0
    removed_stale_files: int = 0
    elapsed_seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        for key in ("out_dir", "truth_dir"):
            out[key] = str(out[key])
        for key in ("start_date", "end_date"):
            out[key] = out[key].isoformat()
        return out
