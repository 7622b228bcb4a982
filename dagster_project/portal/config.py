"""Where the portal keeps and finds things, resolved once from `settings` when the app is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster_project import settings


@dataclass(frozen=True)
class PortalConfig:
    portal_dir: Path
    exports_dir: Path
    inbox_dir: Path
    reference_dir: Path
    published_path: Path
    session_hours: float = 8.0  # a working day; sign in again the next morning
    https_only: bool = False  # set when served behind TLS: adds the Secure cookie flag
    max_failed_logins_per_user: int = 5
    max_failed_logins_per_client: int = 20
    lockout_seconds: int = 15 * 60

    @property
    def session_seconds(self) -> int:
        return int(self.session_hours * 3600)

    @classmethod
    def from_settings(cls, *, https_only: bool = False, session_hours: float = 8.0) -> PortalConfig:
        return cls(
            portal_dir=settings.portal_dir(),
            exports_dir=settings.exports_dir(),
            inbox_dir=settings.inbox_dir(),
            reference_dir=settings.reference_dir(),
            published_path=settings.published_path(),
            https_only=https_only,
            session_hours=session_hours,
        )
