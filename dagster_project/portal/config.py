"""Where the portal keeps and finds things, resolved once from `settings` when the app is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dagster_project import settings
from dagster_project.portal.outcomes import MAX_UPLOAD_BYTES
from dagster_project.portal.throttle import LoginPolicy


@dataclass(frozen=True)
class PortalConfig:
    portal_dir: Path
    exports_dir: Path
    inbox_dir: Path
    reference_dir: Path
    published_path: Path
    session_hours: float = 8.0  # a working day; sign in again the next morning
    https_only: bool = False  # set when served behind TLS: adds the Secure cookie flag
    login: LoginPolicy = field(default_factory=LoginPolicy)
    # Refusals of requests without a session recorded one by one, per address per minute; the
    # rest are counted into one entry (see audit.RefusalLimiter).
    refusals_logged_per_client: int = 10
    refusals_logged_total: int = 200
    # Request bodies, counted as they stream in (limits.BodySizeLimit): any route, and the outcomes
    # file of an upload (its request may be 64 KB larger, for the multipart framing).
    max_request_bytes: int = 64 * 1024
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    # Audit entries older than this are deleted at start and then hourly (None: kept).
    audit_keep_days: int | None = None
    audit_prune_every_seconds: float = 3600.0

    @property
    def max_upload_request_bytes(self) -> int:
        return self.max_upload_bytes + 64 * 1024

    @property
    def session_seconds(self) -> int:
        return int(self.session_hours * 3600)

    @classmethod
    def from_settings(
        cls,
        *,
        https_only: bool = False,
        session_hours: float = 8.0,
        max_request_bytes: int = 64 * 1024,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        audit_keep_days: int | None = None,
    ) -> PortalConfig:
        return cls(
            portal_dir=settings.portal_dir(),
            exports_dir=settings.exports_dir(),
            inbox_dir=settings.inbox_dir(),
            reference_dir=settings.reference_dir(),
            published_path=settings.published_path(),
            https_only=https_only,
            session_hours=session_hours,
            max_request_bytes=max_request_bytes,
            max_upload_bytes=max_upload_bytes,
            audit_keep_days=audit_keep_days,
        )
