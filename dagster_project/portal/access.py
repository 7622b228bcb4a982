"""What a signed-in user may do, shared by the JSON API and the HTML pages.

Each function checks the user's role and team on the server, records the decision in the audit
log when it matters (sign-ins, downloads, uploads, refusals) and either returns data or raises
`Refused` with an HTTP status and a message fit to show the user.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date

from dagster_project.exports.csv_safe import mask_phone
from dagster_project.exports.lists import (
    TEAM_RE,
    ListIntegrityError,
    Manifest,
    TeamList,
    list_manifests,
    parse_list_id,
    read_list_file,
    read_list_rows,
)
from dagster_project.portal import audit, throttle
from dagster_project.portal.config import PortalConfig
from dagster_project.portal.outcomes import (
    DoNotContactFileError,
    ListCache,
    UploadResult,
    process_upload,
)
from dagster_project.portal.report import Report, load_report
from dagster_project.portal.users import (
    USERNAME_RE,
    PasswordHashBusy,
    User,
    authenticate,
    get_user,
    normalise_username,
)

log = logging.getLogger(__name__)

GENERIC_LOGIN_ERROR = "Unknown user name or wrong password."


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ListInfo:
    list_id: str
    list_date: date
    as_of_date: date
    team: str
    rows: int
    control: int
    eligible: int
    downloadable: bool

    @property
    def download_name(self) -> str:
        return f"{self.list_date.isoformat()}_{self.team}.csv"

    def as_dict(self) -> dict[str, object]:
        return {
            "list_id": self.list_id,
            "list_date": self.list_date.isoformat(),
            "as_of_date": self.as_of_date.isoformat(),
            "team": self.team,
            "rows": self.rows,
            "control": self.control,
            "eligible": self.eligible,
            "download_url": f"/api/lists/{self.list_id}/download" if self.downloadable else None,
        }


def login(
    config: PortalConfig, refusals: audit.RefusalLimiter, username: str, password: str, client: str | None
) -> User:
    """Check a sign-in under the throttle (see `throttle.py`); audited. Raises Refused(401|429|503).

    The attempt is decided and recorded before the password is hashed, in one transaction, so
    parallel guesses cannot slip past the limit. The audit log names the user only if that user
    exists: a password typed into the user-name box never lands there. Failures with an unknown
    name are anyone's to send, so they go through the refusal limiter like other unauthenticated
    requests; failures for a real user are bounded by that user's lockout and recorded one by one.
    """
    name = normalise_username(username or "")
    known = get_user(config.portal_dir, name) if USERNAME_RE.fullmatch(name) else None
    shown = known.username if known else audit.UNKNOWN_USER
    team = known.team if known else None
    decision = throttle.begin_attempt(
        config.portal_dir, throttle.name_key(config.portal_dir, name), client, config.login
    )
    if decision.attempt_id is None:
        refusals.record("login", "refused", username=shown, team=team, client=client, detail=decision.reason)
        minutes = max(1, math.ceil(decision.retry_after / 60))
        raise Refused(
            429,
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}, "
            "or ask the data team to set a new password (that also lifts the lock).",
        )
    try:
        user = authenticate(config.portal_dir, name, password or "")
    except PasswordHashBusy as exc:
        throttle.cancel_attempt(config.portal_dir, decision.attempt_id)
        refusals.record("login", "refused", username=shown, team=team, client=client, detail="server busy")
        raise Refused(503, "The portal is busy; try again in a minute.") from exc
    throttle.finish_attempt(config.portal_dir, decision.attempt_id, ok=user is not None)
    if user is None:
        if known is None:
            refusals.record("login", "failed", username=shown, client=client)
        else:
            audit.record(config.portal_dir, "login", "failed", username=shown, team=team, client=client)
        raise Refused(401, GENERIC_LOGIN_ERROR)
    audit.record(config.portal_dir, "login", "ok", user=user, client=client)
    return user


def visible_lists(config: PortalConfig, user: User, client: str | None) -> list[ListInfo]:
    """The lists this user may see, newest first: own team, or every team for a manager. Audited."""
    infos: list[ListInfo] = []
    for manifest in list_manifests(config.exports_dir):
        for entry in manifest.teams:
            if user.can_see_team(entry.team):
                infos.append(
                    ListInfo(
                        list_id=entry.list_id,
                        list_date=manifest.list_date,
                        as_of_date=manifest.as_of_date,
                        team=entry.team,
                        rows=entry.rows,
                        control=entry.control,
                        eligible=entry.eligible,
                        downloadable=user.can_download_team(entry.team),
                    )
                )
    audit.record(
        config.portal_dir,
        "list",
        "ok",
        user=user,
        target="all teams" if user.is_manager else f"team {user.team}",
        rows=len(infos),
        client=client,
    )
    return infos


def fetch_list(
    config: PortalConfig, user: User, list_id: str, client: str | None, purpose: str
) -> tuple[Manifest, TeamList, bytes]:
    """A list's stored bytes after the team check. `purpose` is 'download' or 'view'.

    The id is parsed and checked against the user's team before anything is read from disk, so
    a refusal never depends on (or reveals) whether another team's file exists.
    """
    shown_id = list_id if len(list_id) <= 80 else list_id[:80] + "…"
    parsed = parse_list_id(list_id)
    if parsed is None:
        audit.record(
            config.portal_dir, purpose, "refused", user=user, target=shown_id, client=client, detail="malformed list id"
        )
        raise Refused(404, "No such list.")
    _, team = parsed
    if not user.can_see_team(team):
        audit.record(
            config.portal_dir,
            purpose,
            "refused",
            user=user,
            target=list_id,
            client=client,
            detail="list of another team",
        )
        raise Refused(403, "This list belongs to another team.")
    if purpose == "download" and not user.can_download_team(team):
        audit.record(
            config.portal_dir,
            purpose,
            "refused",
            user=user,
            target=list_id,
            client=client,
            detail="role may not download raw lists",
        )
        raise Refused(
            403,
            "Raw list files (with phone numbers) are only for the team's agents and lead; open the list to see it with masked phones.",
        )
    try:
        found = read_list_file(config.exports_dir, list_id)
    except ListIntegrityError as exc:
        log.error("%s", exc)
        audit.record(
            config.portal_dir,
            purpose,
            "failed",
            user=user,
            target=list_id,
            client=client,
            detail="file does not match its manifest",
        )
        raise Refused(
            500, "This list file is damaged; the data team has been told. Try again after the next run."
        ) from exc
    if found is None:
        audit.record(
            config.portal_dir, purpose, "refused", user=user, target=list_id, client=client, detail="no such list"
        )
        raise Refused(404, "No such list.")
    manifest, entry, data = found
    audit.record(config.portal_dir, purpose, "ok", user=user, target=list_id, rows=entry.rows, client=client)
    return manifest, entry, data


def list_rows_for(user: User, entry: TeamList, data: bytes) -> list[dict[str, str]]:
    """The rows of a list as this user may see them (phones masked for managers)."""
    rows = read_list_rows(data)
    if not user.can_download_team(entry.team):
        for row in rows:
            row["phone"] = mask_phone(row.get("phone", ""))
    return rows


def refuse(
    config: PortalConfig, user: User | None, client: str | None, target: str, message: str, status: int = 403
) -> Refused:
    """Audit a refused page or API call and return the exception to raise."""
    audit.record(config.portal_dir, "refused", "refused", user=user, target=target, client=client, detail=message)
    return Refused(status, message)


def upload_outcomes(
    config: PortalConfig, cache: ListCache, user: User, data: bytes, filename: str, client: str | None
) -> UploadResult:
    if not user.can_upload() or user.team is None:
        raise refuse(config, user, client, "upload", "Only a team's agents and lead upload outcomes.")
    team_lists = cache.team_lists(config.exports_dir, user.team)
    try:
        result = process_upload(
            data,
            team_lists=team_lists,
            agent=user.username,
            inbox_dir=config.inbox_dir,
            reference_dir=config.reference_dir,
            max_bytes=config.max_upload_bytes,
        )
    except DoNotContactFileError as exc:
        log.error("%s", exc)
        audit.record(config.portal_dir, "upload", "failed", user=user, target=filename, client=client, detail=str(exc))
        raise Refused(
            500, "The do-not-contact file cannot be updated; nothing was saved. The data team has been told."
        ) from exc
    audit.record(
        config.portal_dir,
        "upload",
        result.status,
        user=user,
        target=result.extract_file.name if result.extract_file else filename,
        rows=len(result.accepted),
        client=client,
        detail=f"{result.rows_in_file} rows in {filename}, {result.rows_in_file - len(result.accepted)} rejected, "
        f"{result.do_not_contact_added} added to do-not-contact",
    )
    return result


def report_for(config: PortalConfig, user: User, team: str | None, client: str | None) -> tuple[Report, str | None]:
    """(report, team filter applied). Leads get their own team; managers any team or all."""
    if not user.sees_reports:
        raise refuse(config, user, client, "report", "The effectiveness report is for team leads and managers.")
    if team is not None and not TEAM_RE.fullmatch(team):
        raise Refused(400, "Unknown team.")
    if user.is_manager:
        scope = team
    else:
        if team is not None and team != user.team:
            raise refuse(config, user, client, f"report team={team}", "Leads see the report of their own team only.")
        scope = user.team
    report = load_report(config.published_path, scope)
    audit.record(
        config.portal_dir,
        "report",
        "ok" if report.status == "ok" else report.status,
        user=user,
        target=f"team {scope}" if scope else "all teams",
        rows=len(report.rows),
        client=client,
        detail=report.message or None,
    )
    return report, scope


def audit_for(
    config: PortalConfig, user: User, client: str | None, *, event: str | None, username: str | None, limit: int
) -> list[audit.AuditEntry]:
    """Managers see every entry; leads the entries of their own team's users."""
    if not user.sees_reports:
        raise refuse(config, user, client, "audit", "The audit log is for team leads and managers.")
    team = None if user.is_manager else user.team
    found = audit.entries(config.portal_dir, limit=limit, team=team, event=event or None, username=username or None)
    filters = [f"{k}={v}" for k, v in (("team", team), ("event", event), ("user", username)) if v]
    audit.record(
        config.portal_dir,
        "audit",
        "ok",
        user=user,
        target=" ".join(filters) or "all entries",
        rows=len(found),
        client=client,
    )
    return found
