"""Failure alerts from a real failing run: the alert log line, the webhook POST and the e-mail."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from dagster_project.defs.ops import failure_hooks, sensors
from dagster_project.defs.ops.alerts import Alert, alerted_runs, alerts_log_path, record_alert

run_failure_alerts = next(s for s in sensors if s.name == "run_failure_alerts")


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"content_type": self.headers["Content-Type"], "json": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive one message (no STARTTLS offered, no auth)."""

    messages: list[dict] = []

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        envelope: dict = {"rcpt": []}
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == "MAIL":
                envelope["from"] = command
                self.wfile.write(b"250 OK\r\n")
            elif verb == "RCPT":
                envelope["rcpt"].append(command)
                self.wfile.write(b"250 OK\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                envelope["data"] = "".join(data)
                type(self).messages.append(envelope)
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@pytest.fixture
def webhook() -> Iterator[str]:
    _Webhook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/crm"
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[int]:
    _Smtp.messages = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@dg.asset
def flaky_extract() -> None:
    raise ValueError("boom: the extract server refused the connection")


@dg.asset(deps=[flaky_extract])
def downstream_mart() -> None:
    pass


def _failing_job(with_hooks: bool) -> dg.JobDefinition:
    job = dg.define_asset_job(
        "nightly", executor_def=dg.in_process_executor, hooks=failure_hooks if with_hooks else None
    )
    return dg.Definitions(assets=[flaky_extract, downstream_mart], jobs=[job]).resolve_job_def("nightly")


def _log_lines() -> list[dict]:
    path = alerts_log_path()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_a_failed_step_writes_the_alert_log_posts_the_webhook_and_sends_mail(
    crm_env, module_instance, webhook, smtp, monkeypatch
):
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", webhook)
    monkeypatch.setenv("CRM_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_ALERT_SMTP_PORT", str(smtp))
    monkeypatch.setenv("CRM_ALERT_SMTP_FROM", "warehouse@example.cn")
    monkeypatch.setenv("CRM_ALERT_SMTP_TO", "ops@example.cn, analytics@example.cn")

    result = _failing_job(with_hooks=True).execute_in_process(instance=module_instance, raise_on_error=False)
    assert not result.success

    [line] = _log_lines()
    assert alerts_log_path() == crm_env.data / "alerts" / "alerts.log"
    assert line["run_id"] == result.run_id and line["job"] == "nightly" and line["step"] == "flaky_extract"
    assert "ValueError: boom: the extract server refused the connection" in line["error"]
    assert line["source"] == "op_failure_hook" and line["time"]

    [post] = _Webhook.received
    assert post["content_type"].startswith("application/json")
    assert post["json"]["run_id"] == result.run_id and post["json"]["step"] == "flaky_extract"
    assert post["json"]["text"].startswith("crm-warehouse: job nightly failed at step flaky_extract")

    [mail] = _Smtp.messages
    assert "warehouse@example.cn" in mail["from"] and len(mail["rcpt"]) == 2
    assert "Subject: crm-warehouse: job nightly failed at step flaky_extract" in mail["data"]
    assert result.run_id in mail["data"]

    # the run failure sensor sees the hook already reported this run and stays quiet
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure,
        dagster_instance=module_instance,
        dagster_run=module_instance.get_run_by_id(result.run_id),
    ).for_run_failure()
    run_failure_alerts(context)
    assert len(_log_lines()) == 1 and len(_Webhook.received) == 1


def test_the_run_failure_sensor_alerts_for_runs_without_the_hook(crm_env, module_instance, webhook, monkeypatch):
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", webhook)
    result = _failing_job(with_hooks=False).execute_in_process(instance=module_instance, raise_on_error=False)
    assert _log_lines() == []
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure,
        dagster_instance=module_instance,
        dagster_run=module_instance.get_run_by_id(result.run_id),
    ).for_run_failure()
    run_failure_alerts(context)
    [line] = _log_lines()
    assert line["source"] == "run_failure_sensor" and line["run_id"] == result.run_id
    assert line["step"] == "flaky_extract" and "boom" in line["error"]
    assert _Webhook.received[0]["json"]["source"] == "run_failure_sensor"
    assert alerted_runs() == {result.run_id}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_undeliverable_alerts_are_logged_never_raised(crm_env, monkeypatch, caplog):
    port = _closed_port()
    monkeypatch.setenv("CRM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{port}/nothing-here")
    monkeypatch.setenv("CRM_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_ALERT_SMTP_PORT", str(port))
    monkeypatch.setenv("CRM_ALERT_SMTP_TO", "ops@example.cn")
    delivery = record_alert(Alert(run_id="r1", job="nightly", step="x", error="boom", source="test"))
    assert delivery.logged and not delivery.emailed and not delivery.posted
    assert len(delivery.problems) == 2
    assert "could not deliver the alert for run r1" in caplog.text
    assert _log_lines()[0]["run_id"] == "r1"

    # even the log itself failing does not raise
    monkeypatch.delenv("CRM_ALERT_WEBHOOK_URL")
    monkeypatch.delenv("CRM_ALERT_SMTP_HOST")
    (crm_env.data / "alerts").chmod(0o500)
    (crm_env.data / "alerts" / "alerts.log").unlink()
    (crm_env.data / "alerts").rmdir()
    (crm_env.data / "alerts").write_text("a file where the folder should be")
    delivery = record_alert(Alert(run_id="r2", job="nightly", step=None, error="boom", source="test"))
    assert not delivery.logged and delivery.problems
