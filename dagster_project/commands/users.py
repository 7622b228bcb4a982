"""`crm-warehouse users`: manage portal users (add, list, remove, set-password, audit-prune).

Passwords are never command-line arguments (they would end up in shell history and `ps`): they
come from the CRM_PASSWORD environment variable, else from standard input (first line), else
from a hidden prompt when standard input is a terminal.

Every change (and every refused change) is written to the portal's audit log as event `users`,
with the operating-system user who ran the command as the actor (`os:<login>`), the portal user
it concerns as the target and what was done as the detail.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from dagster_project.portal.users import ROLES

CLIENT = "command line"


def _audit(portal_dir: Path, outcome: str, target: str, detail: str, team: str | None = None) -> None:
    """Record a user-management action, actor = the operating-system user."""
    from dagster_project.portal import audit
    from dagster_project.portal.db import init_db

    init_db(portal_dir)
    audit.record(
        portal_dir,
        "users",
        outcome,
        username=audit.os_actor(),
        team=team,
        target=target,
        client=CLIENT,
        detail=detail,
    )


def _read_password(confirm: bool) -> str:
    from_env = os.environ.get("CRM_PASSWORD")
    if from_env:
        return from_env
    if sys.stdin is not None and sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.rstrip("\r\n")
    if not password:
        raise click.UsageError("no password: set CRM_PASSWORD or pipe the password on standard input")
    return password


@click.group()
def users() -> None:
    """Manage portal users: retention agents, team leads, managers."""


@users.command("add")
@click.argument("username")
@click.option("--team", default=None, help="Team code (from retention_teams.yml); required for agents and leads.")
@click.option("--role", type=click.Choice(ROLES), default="agent", show_default=True)
def add(username: str, team: str | None, role: str) -> None:
    """Add a user. The password comes from CRM_PASSWORD or standard input."""
    from dagster_project import settings
    from dagster_project.exports.lists import list_manifests
    from dagster_project.portal.users import UserError, add_user

    portal_dir = settings.portal_dir()
    password = _read_password(confirm=True)
    try:
        user = add_user(portal_dir, username, team, role, password)
    except UserError as exc:
        _audit(portal_dir, "failed", username.strip().lower(), f"add refused: {exc}", team)
        raise click.ClickException(str(exc)) from exc
    _audit(portal_dir, "ok", user.username, f"added ({user.role}, team {user.team or '-'})", user.team)
    click.echo(f"added {user.username} ({user.role}{', team ' + user.team if user.team else ''})")
    if user.team:
        known = {t.team for m in list_manifests(settings.exports_dir()) for t in m.teams}
        if known and user.team not in known:
            click.echo(
                f"note: no published list has team {user.team!r} (teams with lists: {', '.join(sorted(known))})",
                err=True,
            )


@users.command("list")
def list_() -> None:
    """List users with their team and role."""
    from dagster_project import settings
    from dagster_project.portal.users import list_users

    rows = list_users(settings.portal_dir())
    if not rows:
        click.echo("no users")
        return
    click.echo(f"{'user':<24} {'team':<16} {'role':<8} {'created':<26} password changed")
    for user, created, changed in rows:
        click.echo(f"{user.username:<24} {user.team or '-':<16} {user.role:<8} {created:<26} {changed}")


@users.command("remove")
@click.argument("username")
def remove(username: str) -> None:
    """Remove a user; their sessions end at once."""
    from dagster_project import settings
    from dagster_project.portal.users import get_user, remove_user

    portal_dir = settings.portal_dir()
    name = username.strip().lower()
    user = get_user(portal_dir, name)
    if user is None or not remove_user(portal_dir, name):
        _audit(portal_dir, "failed", name, "remove refused: no such user")
        raise click.ClickException(f"no user {username}")
    _audit(portal_dir, "ok", name, f"removed ({user.role}, team {user.team or '-'}); sessions ended", user.team)
    click.echo(f"removed {name}")


@users.command("set-password")
@click.argument("username")
def set_password_(username: str) -> None:
    """Set a new password (from CRM_PASSWORD or standard input); the user's sessions end."""
    from dagster_project import settings
    from dagster_project.portal.users import UserError, get_user, set_password

    portal_dir = settings.portal_dir()
    name = username.strip().lower()
    user = get_user(portal_dir, name)
    if user is None:
        _audit(portal_dir, "failed", name, "set-password refused: no such user")
        raise click.ClickException(f"no user {username}")
    password = _read_password(confirm=True)
    try:
        set_password(portal_dir, name, password)
    except UserError as exc:
        _audit(portal_dir, "failed", name, f"set-password refused: {exc}", user.team)
        raise click.ClickException(str(exc)) from exc
    from dagster_project.portal.throttle import forget_failures

    lifted = forget_failures(portal_dir, name)
    lock = f"; {lifted} failed sign-ins forgotten (lock lifted)" if lifted else ""
    _audit(portal_dir, "ok", name, f"password set; sessions ended{lock}", user.team)
    click.echo(f"password changed for {name}; their sessions were ended{lock}")


@users.command("audit-prune")
@click.option(
    "--older-than",
    "days",
    required=True,
    type=click.IntRange(min=1),
    metavar="DAYS",
    help="Delete audit-log entries older than this many days.",
)
def audit_prune(days: int) -> None:
    """Delete old audit-log entries (the deletion itself is recorded). Run it from cron."""
    from dagster_project import settings
    from dagster_project.portal import audit
    from dagster_project.portal.db import init_db

    portal_dir = settings.portal_dir()
    init_db(portal_dir)
    removed = audit.prune_recorded(
        portal_dir, days, actor=audit.os_actor(), client=CLIENT, via="users audit-prune", always=True
    )
    click.echo(f"deleted {removed} audit entries older than {days} days")
