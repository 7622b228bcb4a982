"""The op failure hook of the nightly job: every failed step records an alert (see alerts.py).

A hook runs inside the run's process, so `crm-warehouse run` (in-process, no daemon) alerts too.
Failures outside any step (the run worker dies, a resource cannot start, the run cannot be
launched) are caught by `sensors.run_failure_alerts` in the daemon.
"""

import logging
import traceback

import dagster as dg

from .alerts import Alert, record_alert, truncate_error

log = logging.getLogger(__name__)

RETRY_NUMBER_TAG = "dagster/retry_number"


def _error_text(exc: BaseException | None) -> str:
    if exc is None:
        return "the step failed (no exception was recorded)"
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    lines = traceback.format_exception_only(type(root), root)
    text = "".join(lines).strip()
    if root is not exc:
        text = f"{type(exc).__name__}: {exc}\ncaused by: {text}"
    return truncate_error(text)


def _attempt(context: dg.HookContext) -> int:
    try:
        run = context.instance.get_run_by_id(context.run_id)
        return int((run.tags if run else {}).get(RETRY_NUMBER_TAG, 0))
    except Exception:  # noqa: BLE001 - the attempt number is a nicety
        return 0


@dg.failure_hook(name="crm_alert_on_failure")
def alert_on_failure(context: dg.HookContext) -> None:
    """Record an alert for the failed step: alert log line, e-mail and webhook where configured."""
    try:
        alert = Alert(
            run_id=context.run_id,
            job=context.job_name,
            step=context.step_key,
            error=_error_text(context.op_exception),
            source="op_failure_hook",
            attempt=_attempt(context),
        )
    except Exception as exc:  # noqa: BLE001 - a hook must never turn one failure into two
        log.warning("could not build the failure alert: %s", exc)
        return
    delivery = record_alert(alert)
    context.log.info(
        f"failure alert recorded (log={delivery.logged}, email={delivery.emailed}, webhook={delivery.posted})"
    )


failure_hooks: set[dg.HookDefinition] = {alert_on_failure}
