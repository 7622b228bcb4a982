"""`crm-warehouse users`: manage portal users (add, list, remove, set-password).

Passwords are never command-line arguments (they would end up in shell history and `ps`): they
come from the CRM_PASSWORD environment variable, else from standard input (first line), else
from a hidden prompt when standard input is a terminal.
"""

from __future__ import annotations

import os
import sys

import click

from dagster_project.portal.users import ROLES


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

    password = _read_password(confirm=True)
    try:
        user = add_user(settings.portal_dir(), username, team, role, password)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
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
    from dagster_project.portal.users import remove_user

    if not remove_user(settings.portal_dir(), username):
        raise click.ClickException(f"no user {username}")
    click.echo(f"removed {username.strip().lower()}")


@users.command("set-password")
@click.argument("username")
def set_password_(username: str) -> None:
    """Set a new password (from CRM_PASSWORD or standard input); the user's sessions end."""
    from dagster_project import settings
    from dagster_project.portal.users import UserError, get_user, set_password

    if get_user(settings.portal_dir(), username) is None:
        raise click.ClickException(f"no user {username}")
    password = _read_password(confirm=True)
    try:
        set_password(settings.portal_dir(), username, password)
    except UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"password changed for {username.strip().lower()}; their sessions were ended")
