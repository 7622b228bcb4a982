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
    help="Delete audit-log entries older than this many days, at start and then hourly (default: keep "
    "everything; see also `crm-warehouse users audit-prune`).",
)
@click.option(
    "--max-upload-mb",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Largest outcomes file an upload may carry; bigger requests get 413 while they stream in.",
)
@click.option(
    "--max-body-kb",
    default=64,
    show_default=True,
    type=click.IntRange(4, 1024),
    help="Largest request body of every other route (sign-in, sign-out, forms).",
)
def serve(
    host: str,
    port: int,
    https_only_cookies: bool,
    session_hours: float,
    trust_proxy: tuple[str, ...],
    audit_keep_days: int | None,
    max_upload_mb: int,
    max_body_kb: int,
) -> None:
    """Run the retention team portal (sign-in, lists, outcome uploads, report, audit log).

    State (users, session secret, audit log) lives in CRM_PORTAL_DIR; lists are read from
    CRM_EXPORTS_DIR, uploads go to CRM_INBOX/outcomes and CRM_REFERENCE_DIR/do_not_contact.csv.
    Add users first with `crm-warehouse users add`.
    """
    import uvicorn

    from dagster_project import settings
    from dagster_project.portal import audit
    from dagster_project.portal.app import create_app
    from dagster_project.portal.config import PortalConfig
    from dagster_project.portal.users import list_users

    try:
        log2_n = settings.portal_scrypt_log2_n()
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if log2_n < settings.PORTAL_SCRYPT_LOG2_N:
        click.echo(
            f"Warning: CRM_PORTAL_SCRYPT_LOG2_N={log2_n}: passwords are hashed at scrypt N=2^{log2_n}, weaker "
            f"than the default 2^{settings.PORTAL_SCRYPT_LOG2_N}. That setting is for tests only.",
            err=True,
        )
    config = PortalConfig.from_settings(
        https_only=https_only_cookies,
        session_hours=session_hours,
        max_request_bytes=max_body_kb * 1024,
        max_upload_bytes=max_upload_mb * 2**20,
        audit_keep_days=audit_keep_days,
    )
    app = create_app(config)
    if audit_keep_days is not None:
        audit.prune_recorded(
            config.portal_dir,
            audit_keep_days,
            actor=audit.os_actor(),
            client="serve",
            via="serve --audit-keep-days",
            always=True,
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
