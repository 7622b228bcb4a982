"""The outcome of validating one extract file, as plain data (stored as JSON next to the report)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from .expectations import ERROR, WARNING


@dataclass(frozen=True)
class FileInfo:
    """One loaded file, from its `ods.load_log` row."""

    kind: str
    load_id: int
    source_file: str
    extract_date: date | None
    loaded_on: date
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int

    @property
    def reference_date(self) -> date:
        """The date 'the future' is measured from: the extract date, else the day it was loaded."""
        return self.extract_date or self.loaded_on

    @property
    def reject_rate(self) -> float:
        return self.rows_rejected / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_unique
    description: str
    severity: str  # error | warning
    columns: tuple[str, ...]
    success: bool
    observed: str
    unexpected_count: int | None = None
    element_count: int | None = None
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileValidation:
    file: FileInfo
    outcomes: tuple[ExpectationOutcome, ...] = field(default_factory=tuple)

    def failed(self, severity: str) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success and o.severity == severity]

    @property
    def errors(self) -> list[ExpectationOutcome]:
        return self.failed(ERROR)

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return self.failed(WARNING)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("extract_date", "loaded_on"):
            value = out["file"][key]
            out["file"][key] = value.isoformat() if value else None
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FileValidation:
        f = dict(raw["file"])
        f["extract_date"] = date.fromisoformat(f["extract_date"]) if f.get("extract_date") else None
        f["loaded_on"] = date.fromisoformat(f["loaded_on"])
        outcomes = tuple(
            ExpectationOutcome(**{**o, "columns": tuple(o["columns"]), "examples": tuple(o["examples"])})
            for o in raw["outcomes"]
        )
        return cls(file=FileInfo(**f), outcomes=outcomes)
