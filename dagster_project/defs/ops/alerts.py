"""Failure alerts: always a JSON line in `<data>/alerts/alerts.log`, optionally e-mail and a webhook.

Configured from the environment (read when an alert is sent, so no restart is needed for a change
picked up by a new run):

    CRM_ALERT_SMTP_HOST      SMTP server; e-mail is sent only when this and CRM_ALERT_SMTP_TO are set
    CRM_ALERT_SMTP_PORT      default 25; 465 = implicit TLS; otherwise STARTTLS when the server offers it
    CRM_ALERT_SMTP_FROM      default crm-warehouse@<host name>
    CRM_ALERT_SMTP_TO        comma-separated recipients
    CRM_ALERT_SMTP_USER      log in when set, with CRM_ALERT_SMTP_PASSWORD
    CRM_ALERT_WEBHOOK_URL    POST the alert as JSON (with a one-line "text" for chat tools)

Delivering an alert never raises: a failure to write, mail or post is logged and the others are
still tried, so an alert problem never hides or replaces the failure being reported.
This module does not import Dagster; `hooks.py` and `sensors.py` call it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import smtplib
import socket
import ssl
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from ... import settings

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 4000
TAIL_BYTES = 512 * 1024


@dataclass(frozen=True)
class Alert:
    run_id: str
    job: str
    step: str | None
    error: str
    source: str  # op_failure_hook | run_failure_sensor
    time: str = field(default_factory=lambda: datetime.now().astimezone().isoformat(timespec="seconds"))
    attempt: int = 0  # 0 for the first attempt, n for the n-th automatic retry

    @property
    def summary(self) -> str:
        where = f" at step {self.step}" if self.step else ""
        retry = f" (retry {self.attempt})" if self.attempt else ""
        first_line = self.error.strip().splitlines()[0] if self.error.strip() else "failed"
        return f"crm-warehouse: job {self.job} failed{where}{retry}: {first_line} [run {self.run_id}]"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None
    password: str | None


@dataclass
class Delivery:
    """Which channels received the alert (for logs and tests)."""

    logged: bool = False
    emailed: bool = False
    posted: bool = False
    problems: list[str] = field(default_factory=list)


def alerts_log_path() -> Path:
    return settings.data_dir() / "alerts" / "alerts.log"


def smtp_config() -> SmtpConfig | None:
    host = os.environ.get("CRM_ALERT_SMTP_HOST", "").strip()
    recipients = tuple(a.strip() for a in os.environ.get("CRM_ALERT_SMTP_TO", "").split(",") if a.strip())
    if not host or not recipients:
        return None
    return SmtpConfig(
        host=host,
        port=int(os.environ.get("CRM_ALERT_SMTP_PORT", "25")),
        sender=os.environ.get("CRM_ALERT_SMTP_FROM", "").strip() or f"crm-warehouse@{socket.gethostname()}",
        recipients=recipients,
        user=os.environ.get("CRM_ALERT_SMTP_USER") or None,
        password=os.environ.get("CRM_ALERT_SMTP_PASSWORD") or None,
    )


def webhook_url() -> str | None:
    return os.environ.get("CRM_ALERT_WEBHOOK_URL", "").strip() or None


def truncate_error(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " ... (truncated)"


def append_to_log(alert: Alert, path: Path | None = None) -> None:
    path = path or alerts_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(alert), ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def send_email(alert: Alert, config: SmtpConfig) -> None:
    message = EmailMessage()
    message["Subject"] = alert.summary[:200]
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message.set_content(
        f"{alert.summary}\n\n"
        f"time:    {alert.time}\njob:     {alert.job}\nrun id:  {alert.run_id}\nstep:    {alert.step or '-'}\n"
        f"attempt: {alert.attempt}\nsource:  {alert.source}\n\nerror:\n{alert.error}\n\n"
        f"Alert log: {alerts_log_path()}\nRecovery steps: docs/operations.md\n"
    )
    if config.port == 465:
        server: smtplib.SMTP = smtplib.SMTP_SSL(
            config.host, config.port, timeout=TIMEOUT_S, context=ssl.create_default_context()
        )
    else:
        server = smtplib.SMTP(config.host, config.port, timeout=TIMEOUT_S)
    try:
        server.ehlo()
        if config.port != 465 and server.has_extn("starttls"):
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
        if config.user:
            server.login(config.user, config.password or "")
        server.send_message(message)
    finally:
        try:
            server.quit()
        except smtplib.SMTPException:
            server.close()


def post_webhook(alert: Alert, url: str) -> None:
    body = json.dumps({"text": alert.summary, **asdict(alert)}, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (URL from the operator's config)
        if not 200 <= response.status < 300:
            raise OSError(f"webhook answered HTTP {response.status}")


def record_alert(alert: Alert) -> Delivery:
    """Write the alert to the log, then e-mail and post it where configured. Never raises."""
    delivery = Delivery()
    try:
        append_to_log(alert)
        delivery.logged = True
    except Exception as exc:  # noqa: BLE001 - an alert must never raise
        delivery.problems.append(f"alert log {alerts_log_path()}: {exc}")
    config = None
    try:
        config = smtp_config()
        if config:
            send_email(alert, config)
            delivery.emailed = True
    except Exception as exc:  # noqa: BLE001
        target = f"{config.host}:{config.port}" if config else "CRM_ALERT_SMTP_*"
        delivery.problems.append(f"e-mail via {target}: {exc}")
    url = webhook_url()
    if url:
        try:
            post_webhook(alert, url)
            delivery.posted = True
        except Exception as exc:  # noqa: BLE001
            delivery.problems.append(f"webhook {url}: {exc}")
    for problem in delivery.problems:
        log.warning("could not deliver the alert for run %s: %s", alert.run_id, problem)
    log.info("alert for run %s recorded: %s", alert.run_id, alert.summary)
    return delivery


def alerted_runs(path: Path | None = None) -> set[str]:
    """Run ids with an alert among the last lines of the log (to avoid alerting twice for one run)."""
    path = path or alerts_log_path()
    if not path.exists():
        return set()
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - TAIL_BYTES))
        tail = fh.read().decode("utf-8", errors="replace")
    runs = set()
    for line in tail.splitlines():
        try:
            runs.add(json.loads(line)["run_id"])
        except (ValueError, KeyError, TypeError):
            continue
    return runs
