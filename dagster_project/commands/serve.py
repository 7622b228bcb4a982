"""`crm-warehouse serve`: run the retention team portal."""

from __future__ import annotations

import ipaddress
import logging

import click

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxy_address(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise click.BadParameter(
                f"{value!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/24)"
            ) from exc
    return values


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option(
    "--https-only-cookies",
    is_flag=True,
    help="Mark the session cookie Secure (use when a TLS proxy sits in front of the portal).",
)
@click.option(
    "--session-hours",
    default=8.0,
    show_default=True,
    type=click.FloatRange(0.1, 24 * 7),
    help="How long a sign-in lasts.",
)
@click.option(
    "--trust-proxy",
    "trust_proxy",
    multiple=True,
    metavar="ADDRESS",
    callback=_proxy_address,
    help="Address (or network) of a reverse proxy whose X-Forwarded-For header names the real client; "
    "repeatable. Default: none, so the header is ignored and the audit log and sign-in throttle see "
    "the connecting address.",
)
@click.option(
    "--audit-keep-days",
    type=click.IntRange(min=1),
    default=None,
    help="At start, delete audit-log entries older than this many days (default: keep everything; "
    "see also `crm-warehouse users audit-prune`).",
)
def serve(
    host: str,
    port: int,
    https_only_cookies: bool,
    session_hours: float,
    trust_proxy: tuple[str, ...],
    audit_keep_days: int | None,
) -> None:
    """Run the retention team portal (sign-in, lists, outcome uploads, report, audit log).

    State (users, session secret, audit log) lives in CRM_PORTAL_DIR; lists are read from
    CRM_EXPORTS_DIR, uploads go to CRM_INBOX/outcomes and CRM_REFERENCE_DIR/do_not_contact.csv.
    Add users first with `crm-warehouse users add`.
    """
    import uvicorn

    from dagster_project.portal import audit
    from dagster_project.portal.app import create_app
    from dagster_project.portal.config import PortalConfig
    from dagster_project.portal.users import list_users

    config = PortalConfig.from_settings(https_only=https_only_cookies, session_hours=session_hours)
    app = create_app(config)
    if audit_keep_days is not None:
        removed = audit.prune(config.portal_dir, audit_keep_days)
        audit.record(
            config.portal_dir,
            "audit",
            "pruned",
            username=audit.os_actor(),
            client="serve",
            rows=removed,
            detail=f"deleted {removed} entries older than {audit_keep_days} days (serve --audit-keep-days)",
        )
    if not list_users(config.portal_dir):
        click.echo(
            "No portal users yet: add one with `crm-warehouse users add NAME --team TEAM --role agent`.",
            err=True,
        )
    if not _is_loopback(host) and not https_only_cookies:
        click.echo(
            f"Warning: listening on {host} without --https-only-cookies; put a TLS proxy in front "
            "so passwords and session cookies do not cross the network in clear text.",
            err=True,
        )
    click.echo(f"Retention portal on http://{host}:{port}/  (state: {config.portal_dir})")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        proxy_headers=bool(trust_proxy),
        # Only these peers may name the client; never the FORWARDED_ALLOW_IPS environment default.
        forwarded_allow_ips=list(trust_proxy) if trust_proxy else [],
    )
