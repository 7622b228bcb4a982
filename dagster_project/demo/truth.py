"""Ground truth of a demo run: the planted churn process and what it implies at each month end.

Written only to the truth folder, never to the inbox; the pipeline never reads it. It exists so
that churn models can be evaluated against the process that really generated the data.

The planted churn hazard
------------------------
Every active customer ``i`` churns on day ``t`` with probability ``h_i`` computed from their
state at the end of day ``t-1``::

    h = H0 * exp( B_GAP       * log(1 + max(gap_days * purchase_rate - 1, 0))
                + B_DECLINE   * min(purchase_rate * DECLINE_FULL_WEIGHT_DAYS, 1)
                              * clip(1 - spend_30 / spend_180, 0, 1)
                + B_COMPLAINT * min(open_complaints + BREACH_WEIGHT * open_complaints_beyond_sla, 6)
                + B_CALLS     * min(inbound_calls_last_30_days, 8)
                + B_CANCEL    * [cancel_request call in the last CANCEL_WINDOW days] )
    h = min(h, H_MAX)

``gap_days`` is the number of days since the last purchase; multiplied by the customer's own
purchase rate it counts the purchases the customer would normally have made since, so only a
gap longer than the customer's habit raises the hazard. ``spend_30`` and ``spend_180`` are
exponentially weighted daily purchase spend with half-lives of 30 and 180 days; their decline
counts fully only for customers who normally buy at least every ``DECLINE_FULL_WEIGHT_DAYS``
days. The constants live in ``simulation.py``. Behaviour feeds the hazard: a latent "at risk"
state (entered at a rate that grows with frailty, short tenure and dissatisfaction from slow
complaints, abandoned calls and fees) makes the purchase rate decay by ``DECAY_AT_RISK`` per
day and adds calls, complaints and cancel requests; so churners show declining spend, growing
gaps and more contact before they go. A churn event is ``closed`` with probability
``CLOSED_SHARE`` (a customers row with status closed) and ``silent`` otherwise (all activity
stops, the record stays active). The churn day is the first day without activity.

Probabilities in ``churn_truth_snapshots.csv``
------------------------------------------------
For each month end ``s`` and each customer active at the end of ``s``, with ``h`` the hazard
for day ``s+1`` held constant over the horizon (``q = 1 - h``)::

    p_churn_90d = 1 - q**90

The standard label fires when the account is closed within (s, s+90] or there is no
consumption transaction (purchase or refund) in (s, s+90]. Purchases on day ``s+t`` are
Poisson with mean ``lam_t = purchase_rate * e_t * m(s+t)``, where ``m`` is the calendar
multiplier (weekday, festivals) and ``e_t`` the engagement, which follows its deterministic
path from its value at ``s`` (``e * exp(-DECAY_AT_RISK * (t-1))`` for an at-risk customer,
``1 - (1-e) * (1-RELAX_HEALTHY)**(t-1)`` otherwise; state changes after ``s`` are ignored).
A refund already scheduled for day ``s+r`` happens unless the customer churned first. With
``E(k) = exp(-(lam_1 + ... + lam_k)) * [k < r]`` the probability of no consumption on days
1..k given no churn before day k+1, and ``c = CLOSED_SHARE``::

    p_label_90d = c * (1 - q**90)                                   # closed within 90 days
                + (1 - c) * sum_{t=1..90} q**(t-1) * h * E(t-1)     # silent churn on day t, nothing before
                + q**90 * E(90)                                     # no churn, no consumption

The realized columns (`realized_churn_90d`, `realized_label_90d`) are filled in when the
whole window lies inside the period and left empty otherwise.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

from dagster_project.demo import calendar, render
from dagster_project.demo.population import Population
from dagster_project.demo.simulation import (
    CLOSED_SHARE,
    DECAY_AT_RISK,
    NO_DAY,
    RELAX_HEALTHY,
    Simulation,
)
from dagster_project.extracts import spec

HORIZON = 90

SNAPSHOT_COLUMNS = (
    "customer_id",
    "snapshot_date",
    "daily_hazard",
    "p_churn_90d",
    "p_label_90d",
    "purchase_rate",
    "engagement",
    "is_at_risk",
    "realized_churn_90d",
    "realized_label_90d",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "signup_date",
    "in_initial_base",
    "churned",
    "churn_date",
    "churn_mode",
    "region",
    "customer_type",
    "purchase_rate",
    "ticket_log_mean",
    "digital_preference",
    "frailty",
    "call_propensity",
    "complaint_propensity",
    "has_credit",
    "is_vip",
    "is_at_risk_at_end",
)
DEFECT_COLUMNS = ("file", "line", "kind", "defect_type", "column", "detail", "original_line")


def p_label_90d(
    hazard: np.ndarray,
    purchase_rate: np.ndarray,
    engagement: np.ndarray,
    at_risk: np.ndarray,
    multipliers: np.ndarray,
    refund_due: np.ndarray,
    closed_share: float = CLOSED_SHARE,
) -> np.ndarray:
    """Probability that the standard 90-day label fires (formula in the module docstring).

    `multipliers[t-1]` is the calendar multiplier of day s+t; `refund_due` is the offset (in days
    after s) of the first refund already scheduled, or a value > HORIZON when there is none.
    """
    h = hazard.astype(np.float64)
    q = 1.0 - h
    surv = np.ones_like(h)  # q**(t-1)
    no_consumption = np.ones_like(h)  # E(t-1)
    cum = np.zeros_like(h)
    silent = np.zeros_like(h)
    decay_factor = np.exp(-DECAY_AT_RISK)
    e = engagement.astype(np.float64).copy()
    for t in range(1, len(multipliers) + 1):
        silent += surv * h * no_consumption
        cum += purchase_rate * e * multipliers[t - 1]
        no_consumption = np.exp(-cum) * (t < refund_due)
        surv *= q
        e = np.where(at_risk, e * decay_factor, e + RELAX_HEALTHY * (1.0 - e))
    return closed_share * (1.0 - surv) + (1.0 - closed_share) * silent + surv * no_consumption


@dataclass
class _Pending:
    day: int
    members: np.ndarray
    hazard: np.ndarray
    p_churn: np.ndarray
    p_label: np.ndarray
    rate: np.ndarray
    engagement: np.ndarray
    at_risk: np.ndarray
    consumed: np.ndarray  # bool over all customers: consumption seen in the window so far


class SnapshotTracker:
    """Month-end snapshots of every active customer; realized labels once the window has passed."""

    def __init__(self, path: Path, start: date, days: int, strings: render.Strings) -> None:
        self.path = path
        self.start = np.datetime64(start)
        self.days = days
        self.snapshot_days = {
            (np.datetime64(s) - self.start).astype(int)
            for s in calendar.month_ends(start, (self.start + days - 1).astype(object))
        }
        self.strings = strings
        self.pending: list[_Pending] = []
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("wb")
        self._fh.write((",".join(SNAPSHOT_COLUMNS) + "\n").encode())

    def observe(self, sim: Simulation, d: int, consumers: np.ndarray) -> None:
        """Call after day d: marks consumption, closes windows ending today, opens a snapshot."""
        for p in self.pending:
            p.consumed[consumers] = True
        for p in [p for p in self.pending if p.day + HORIZON == d]:
            self._flush(sim, p, complete=True)
            self.pending.remove(p)
        if d in self.snapshot_days:
            self.pending.append(self._snapshot(sim, d))

    def close(self, sim: Simulation) -> None:
        for p in self.pending:
            self._flush(sim, p, complete=False)
        self.pending = []
        self._fh.close()

    def discard(self) -> None:
        """Stop after an error: close the file without writing the pending snapshots."""
        self.pending = []
        self._fh.close()

    def _snapshot(self, sim: Simulation, d: int) -> _Pending:
        n = sim.n_active
        members = np.flatnonzero(sim.alive[:n])
        days = self.start + d + 1 + np.arange(HORIZON)
        mult = calendar.purchase_multiplier(days)
        refund_due = np.full(sim.pop.n, HORIZON + 1, dtype=np.int64)
        for due_day, batches in sim.pending_refunds.items():
            for b in batches:
                np.minimum.at(refund_due, b["cust"], due_day - d)
        hazard = sim.hazard[members]
        rate = sim.pop.purchase_rate[members]
        engagement = sim.engagement[members]
        at_risk = sim.at_risk[members]
        p_label = p_label_90d(hazard, rate, engagement, at_risk, mult, refund_due[members])
        return _Pending(
            day=d,
            members=members,
            hazard=hazard,
            p_churn=1.0 - (1.0 - hazard) ** HORIZON,
            p_label=p_label,
            rate=rate * engagement,
            engagement=engagement,
            at_risk=at_risk,
            consumed=np.zeros(sim.pop.n, dtype=bool),
        )

    def _flush(self, sim: Simulation, p: _Pending, complete: bool) -> None:
        m = p.members
        cd = sim.churn_day[m]
        churned = (cd > p.day) & (cd <= p.day + HORIZON)
        closed = churned & (sim.churn_mode[m] == 1)
        label = closed | ~p.consumed[m]
        k = len(m)
        none = pa.nulls(k, pa.string())
        cols = [
            self.strings.customer_ids(m),
            pa.array([self.strings.date(p.day)] * 1, pa.string()).take(pa.array(np.zeros(k, dtype=np.int32))),
            render.floats(p.hazard, 8),
            render.floats(p.p_churn, 6),
            render.floats(p.p_label, 6),
            render.floats(p.rate, 6),
            render.floats(p.engagement, 4),
            render.bools(p.at_risk),
            render.bools(churned) if complete else none,
            render.bools(label) if complete else none,
        ]
        self._fh.write(render.join_lines(cols))
        self.rows += k


def write_customers_truth(path: Path, sim: Simulation, strings: render.Strings) -> None:
    pop: Population = sim.pop
    idx = np.arange(pop.n)
    churned = sim.churn_mode > 0
    mode = pa.array(["none", "closed", "silent"]).take(pa.array(sim.churn_mode.astype(np.int32)))
    churn_date = strings.dates(np.where(churned, sim.churn_day, NO_DAY))
    cols = [
        strings.customer_ids(idx),
        strings.dates(pop.signup_day),
        render.bools(np.arange(pop.n) < pop.n_initial),
        render.bools(churned),
        churn_date,
        mode,
        render.codes(spec.REGIONS, pop.region),
        render.codes(spec.CUSTOMER_TYPES, pop.is_business.astype(np.int8)),
        render.floats(pop.purchase_rate, 6),
        render.floats(pop.ticket_mu, 4),
        render.floats(pop.digital, 4),
        render.floats(pop.frailty, 4),
        render.floats(pop.call_propensity, 4),
        render.floats(pop.complaint_propensity, 4),
        render.bools(pop.has_credit),
        render.bools(pop.is_vip),
        render.bools(sim.at_risk & sim.alive),
    ]
    with path.open("wb") as fh:
        fh.write((",".join(CUSTOMER_COLUMNS) + "\n").encode())
        fh.write(render.join_lines(cols))


class DefectLog:
    """`defects.csv`, appended file by file as the extracts are written (in file order)."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._fh, fieldnames=DEFECT_COLUMNS, lineterminator="\n")
        self._writer.writeheader()
        self.counts: Counter[str] = Counter()

    def add(self, records: list[dict[str, object]]) -> None:
        self._writer.writerows(records)
        self.counts.update(str(r["defect_type"]) for r in records)

    def close(self) -> None:
        self._fh.close()
