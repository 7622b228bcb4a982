"""The day-by-day simulation: vectorized state over all customers, events out.

One `Simulation.step(day)` moves every customer one day forward and returns that day's events
as numeric batches (codes index the tuples in `extracts.spec`). Memory is bounded by the
number of customers: per-customer state arrays, the open complaint cases, and small queues of
refunds and repeat calls due in the next few days.

Order of one day `d`:
1. customers whose sign-up day is `d` become active;
2. every active customer churns with probability `hazard` computed at the end of day `d-1`
   (see `truth.py` for the formula); a churner is `closed` (customers row with status closed)
   or `silent` (nothing more happens); from the churn day on the customer has no activity;
3. purchases, refunds due today, statement payments, fees, transfers, withdrawals;
4. inbound calls (more for at-risk and dissatisfied customers, cancel requests, repeat calls for
   unresolved issues) and outbound sales calls; waits grow with the day's load;
5. complaints: new cases, cases moving to in_progress, cases resolved;
6. latent dynamics: customers become at risk (rate grows with frailty, short tenure and
   dissatisfaction) and then disengage (purchase rate decays), or recover;
7. the spend averages, 30-day call counts and open-complaint counts are updated, and the
   hazard for day `d+1` is computed.

Before day 0 a burn-in of `BURN_IN_DAYS` runs the same dynamics without writing anything (a
churner is reset to a fresh healthy state instead of leaving), so the initial base starts with
settled at-risk shares, spend averages, call counts and open complaints. "Inbound calls" in the
hazard count every inbound call of the customer, including the ~2% where the caller was not
identified in the extract.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from dagster_project.demo import calendar
from dagster_project.demo.names import (
    draw_phones,
    render_emails,
    render_names,
    render_phones,
)
from dagster_project.demo.population import (
    CATEGORY_WEIGHTS_BUSINESS,
    CATEGORY_WEIGHTS_PRIVATE,
    TICKET_SIGMA,
    Population,
    category_shift,
    category_table,
)
from dagster_project.extracts import spec

log = logging.getLogger(__name__)

NO_DAY = -(10**6)
BURN_IN_DAYS = 180  # long enough for at-risk shares and spend averages to settle

# --- churn hazard (documented in truth.py) -------------------------------------------------
H0 = 5.0e-5
B_GAP = 1.50
B_DECLINE = 2.50
B_COMPLAINT = 0.45
B_CALLS = 0.20
B_CANCEL = 2.00
H_MAX = 0.05
BREACH_WEIGHT = 1.5
DECLINE_FULL_WEIGHT_DAYS = 10.0  # a decline counts fully for customers buying at least every 10 days
CANCEL_WINDOW = 30
CLOSED_SHARE = 0.40

# --- latent engagement ----------------------------------------------------------------------
AT_RISK_ENTRY = 1.4e-3  # daily, times frailty, tenure and dissatisfaction factors
AT_RISK_RECOVERY = 1 / 200
DECAY_AT_RISK = 0.05  # engagement *= exp(-DECAY_AT_RISK) per at-risk day
RELAX_HEALTHY = 0.03  # engagement += RELAX_HEALTHY * (1 - engagement) per healthy day
DISSAT_HALF_LIFE = 45.0
EWM_SHORT_HALF_LIFE = 30.0
EWM_LONG_HALF_LIFE = 180.0

# --- transactions ---------------------------------------------------------------------------
REFUND_SHARE = 0.03
TRANSFER_RATE = (0.012, 0.06)  # private, business; per day
WITHDRAWAL_RATE = (0.025, 0.01)

# --- calls ----------------------------------------------------------------------------------
CALL_RATE = 0.0035
OUTBOUND_RATE = 0.0007
CANCEL_CALL_RATE = 0.012  # extra daily cancel_request calls of at-risk customers
UNIDENTIFIED_SHARE = 0.02
REPEAT_SHARE = 0.55
SAVE_SHARE = 0.35  # resolved cancel requests that stop the customer being at risk

# --- complaints -----------------------------------------------------------------------------
COMPLAINT_RATE = 0.0004
SLA_DAYS = np.array([10, 7, 3, 2])  # in the order of spec.COMPLAINT_SEVERITIES
SLOW_SHARE = 0.12


def _idx(values: tuple[str, ...], name: str) -> int:
    return values.index(name)


TT = {name: _idx(spec.TXN_TYPES, name) for name in spec.TXN_TYPES}
CH = {name: _idx(spec.TXN_CHANNELS, name) for name in spec.TXN_CHANNELS}
REASONS = {name: _idx(spec.CALL_REASONS, name) for name in spec.CALL_REASONS}
QUEUES = {name: _idx(spec.CALL_QUEUES, name) for name in spec.CALL_QUEUES}
OUTCOMES = {name: _idx(spec.CALL_OUTCOMES, name) for name in spec.CALL_OUTCOMES}
C_STATUS = {name: _idx(spec.COMPLAINT_STATUSES, name) for name in spec.COMPLAINT_STATUSES}


def _by_name(values: tuple[str, ...], table: dict[str, float]) -> np.ndarray:
    """A table keyed by spec codes, as an array in spec order (KeyError if a code is missing)."""
    return np.array([table[v] for v in values], dtype=float)


# Reason mix of inbound calls: ordinary, customer with an open complaint, at-risk customer.
_REASON_MIX = np.stack(
    [
        _by_name(
            spec.CALL_REASONS,
            {
                "billing": 0.26,
                "technical": 0.20,
                "cancel_request": 0.005,
                "inquiry": 0.30,
                "complaint": 0.07,
                "account_change": 0.12,
                "sales": 0.045,
            },
        ),
        _by_name(
            spec.CALL_REASONS,
            {
                "billing": 0.20,
                "technical": 0.15,
                "cancel_request": 0.02,
                "inquiry": 0.15,
                "complaint": 0.35,
                "account_change": 0.08,
                "sales": 0.05,
            },
        ),
        _by_name(
            spec.CALL_REASONS,
            {
                "billing": 0.30,
                "technical": 0.15,
                "cancel_request": 0.05,
                "inquiry": 0.18,
                "complaint": 0.17,
                "account_change": 0.12,
                "sales": 0.03,
            },
        ),
    ]
)
_REASON_QUEUE = _by_name(
    spec.CALL_REASONS,
    {
        "billing": QUEUES["billing"],
        "technical": QUEUES["technical"],
        "cancel_request": QUEUES["retention"],
        "inquiry": QUEUES["general"],
        "complaint": QUEUES["general"],
        "account_change": QUEUES["general"],
        "sales": QUEUES["general"],
    },
).astype(np.int8)
_TALK_MEDIAN = _by_name(
    spec.CALL_REASONS,
    {
        "billing": 240,
        "technical": 420,
        "cancel_request": 540,
        "inquiry": 150,
        "complaint": 480,
        "account_change": 200,
        "sales": 300,
    },
)
_TRANSFER_P = _by_name(
    spec.CALL_REASONS,
    {
        "billing": 0.12,
        "technical": 0.25,
        "cancel_request": 0.15,
        "inquiry": 0.08,
        "complaint": 0.20,
        "account_change": 0.10,
        "sales": 0.05,
    },
)
_RESOLVE_P = _by_name(
    spec.CALL_REASONS,
    {
        "billing": 0.78,
        "technical": 0.60,
        "cancel_request": 0.55,
        "inquiry": 0.90,
        "complaint": 0.50,
        "account_change": 0.85,
        "sales": 0.80,
    },
)
_QUEUE_WAIT_MEDIAN = _by_name(
    spec.CALL_QUEUES, {"general": 30, "billing": 40, "technical": 55, "retention": 25, "vip": 10}
)
_QUEUE_AGENT_SHARE = _by_name(
    spec.CALL_QUEUES, {"general": 0.40, "billing": 0.22, "technical": 0.22, "retention": 0.06, "vip": 0.10}
)

_COMPLAINT_CHANNEL_MIX = np.stack(
    [  # low / high digital preference
        _by_name(
            spec.COMPLAINT_CHANNELS,
            {"phone": 0.40, "email": 0.12, "web": 0.10, "app": 0.08, "branch": 0.25, "social": 0.05},
        ),
        _by_name(
            spec.COMPLAINT_CHANNELS,
            {"phone": 0.15, "email": 0.15, "web": 0.22, "app": 0.33, "branch": 0.05, "social": 0.10},
        ),
    ]
)
_COMPLAINT_CATEGORY = _by_name(
    spec.COMPLAINT_CATEGORIES,
    {
        "billing": 0.22,
        "service_quality": 0.22,
        "network": 0.12,
        "product": 0.15,
        "staff": 0.08,
        "fees": 0.12,
        "other": 0.09,
    },
)
_SEVERITY = _by_name(spec.COMPLAINT_SEVERITIES, {"low": 0.45, "medium": 0.33, "high": 0.16, "critical": 0.06})
_IN_PROGRESS_P = _by_name(
    spec.COMPLAINT_SEVERITIES, {"low": 0.5, "medium": 0.6, "high": 0.8, "critical": 0.95}
)


def _hours(weights: list[float]) -> np.ndarray:
    w = np.array(weights, dtype=float)
    return w / w.sum()


HOURS_PURCHASE = _hours(
    [0.6, 0.3, 0.15, 0.1, 0.1, 0.2, 0.6, 1.5, 2.5, 3, 3.5, 4.5, 6, 5, 4, 4, 4.2, 4.8, 6, 7, 7.5, 6.5, 4, 2]
)
HOURS_SINGLES_DAY = _hours(
    [9, 4, 1.5, 0.5, 0.2, 0.2, 0.6, 1.5, 2.5, 3, 3.5, 4.5, 6, 5, 4, 4, 4.2, 4.8, 6, 7, 8, 8, 7, 6]
)
HOURS_BANKING = _hours(
    [0.1, 0.05, 0.02, 0.02, 0.02, 0.1, 0.5, 1.5, 3, 4, 4, 3.5, 3, 3.5, 4, 4, 3.5, 3, 2.5, 2.5, 2.5, 2, 1, 0.4]
)
HOURS_CALLS = _hours([0] * 8 + [3, 6, 8, 7, 5, 5, 6, 7, 6, 5, 4, 3, 2, 1.5] + [0, 0])
HOURS_OFFICE = _hours([0] * 9 + [4, 5, 5, 3, 4, 5, 5, 4, 3, 1] + [0] * 5)
HOURS_DIGITAL = _hours(
    [0.5, 0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3.5, 4, 4, 3, 1.5]
)


@dataclass
class CustomerBatch:
    cust: np.ndarray  # int64 row index
    full_name: pa.Array  # personal data is rendered at event time: it changes later
    phone_text: pa.Array
    email_text: pa.Array
    region: np.ndarray
    status: np.ndarray  # int8 index into CUSTOMER_STATUSES
    closed_sec: np.ndarray  # -1 = not closed (closed_at is on the file day)
    updated_day: np.ndarray
    updated_sec: np.ndarray


@dataclass
class TransactionBatch:
    first_id: int
    cust: np.ndarray
    sec: np.ndarray
    txn_type: np.ndarray
    channel: np.ndarray
    cents: np.ndarray
    category: np.ndarray  # -1 = none


@dataclass
class CallBatch:
    first_id: int
    cust: np.ndarray  # -1 = caller not identified
    sec: np.ndarray
    direction: np.ndarray
    reason: np.ndarray
    queue: np.ndarray
    agent: np.ndarray  # -1 = no agent (abandoned)
    wait: np.ndarray
    talk: np.ndarray
    outcome: np.ndarray
    transfers: np.ndarray


@dataclass
class ComplaintBatch:
    complaint_id: np.ndarray
    cust: np.ndarray
    open_day: np.ndarray
    open_sec: np.ndarray
    channel: np.ndarray
    category: np.ndarray
    severity: np.ndarray
    status: np.ndarray
    resolved_day: np.ndarray  # NO_DAY = not resolved
    resolved_sec: np.ndarray
    comp_cents: np.ndarray  # -1 = none
    satisfaction: np.ndarray  # 0 = none
    updated_sec: np.ndarray


@dataclass
class DayEvents:
    day: int
    customers: CustomerBatch
    transactions: TransactionBatch
    calls: CallBatch
    complaints: ComplaintBatch
    consumers: np.ndarray  # customers with a purchase or refund today, with repeats (for realized labels)


@dataclass
class _Complaints:
    """Open complaint cases (resolved ones are dropped at the end of their last day)."""

    cols: dict[str, np.ndarray] = field(default_factory=dict)

    NAMES = (
        "complaint_id",
        "cust",
        "open_day",
        "open_sec",
        "channel",
        "category",
        "severity",
        "ip_day",
        "ip_sec",
        "resolve_day",
        "resolve_sec",
    )

    def __post_init__(self) -> None:
        self.cols = {name: np.zeros(0, dtype=np.int64) for name in self.NAMES}

    def add(self, new: dict[str, np.ndarray]) -> None:
        self.cols = {k: np.concatenate([self.cols[k], new[k].astype(np.int64)]) for k in self.NAMES}

    def keep(self, mask: np.ndarray) -> None:
        self.cols = {k: v[mask] for k, v in self.cols.items()}

    def __len__(self) -> int:
        return len(self.cols["complaint_id"])


def _categorical(rng: np.random.Generator, table: np.ndarray, group: np.ndarray | None, n: int) -> np.ndarray:
    """Draw n codes; `table` is one probability row, or one row per group with `group` per draw."""
    cum = np.cumsum(table, axis=-1)
    cum = cum / cum[..., -1:]
    u = rng.random(n)
    if table.ndim == 1:
        return np.minimum(np.searchsorted(cum, u, side="right"), table.shape[-1] - 1).astype(np.int8)
    rows = cum[group]
    return np.minimum((u[:, None] >= rows).sum(axis=1), table.shape[-1] - 1).astype(np.int8)


def _seconds(rng: np.random.Generator, hours_p: np.ndarray, n: int) -> np.ndarray:
    hours = np.searchsorted(np.cumsum(hours_p), rng.random(n), side="right").clip(0, 23)
    return (hours * 3600 + rng.integers(0, 3600, size=n)).astype(np.int32)


def poisson_events(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    """Customers of the events of independent Poisson processes with per-customer `rate`.

    Draws the total count from Poisson(sum(rate)) and spreads it over customers in proportion to
    their rate, which is the same distribution as one Poisson draw per customer but costs a
    cumulative sum and a binary search per event instead of a draw per customer.
    """
    if len(rate) == 0:
        return np.zeros(0, dtype=np.int64)
    cs = np.cumsum(rate, dtype=np.float64)
    total = float(cs[-1])
    k = int(rng.poisson(total)) if total > 0 else 0
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    # Sorted uniforms (normalised cumulative exponential gaps) make the search and later gathers
    # walk memory in order.
    gaps = rng.standard_exponential(k + 1)
    points = np.cumsum(gaps)[:-1] * (total / gaps.sum())
    idx = np.searchsorted(cs, points, side="right")
    return np.minimum(idx, len(rate) - 1).astype(np.int64)


class Simulation:
    """State of every customer; `step(day)` advances one day and returns its events."""

    def __init__(self, pop: Population, rng: np.random.Generator, start: np.datetime64, days: int) -> None:
        self.pop = pop
        self.rng = rng
        self.start = start
        self.days = days
        n = pop.n
        self.n_active = 0
        self.alive = np.zeros(n, dtype=bool)
        self.churn_day = np.full(n, NO_DAY, dtype=np.int32)
        self.churn_mode = np.zeros(n, dtype=np.int8)  # 0 none, 1 closed, 2 silent
        self.engagement = np.ones(n)
        self.at_risk = np.zeros(n, dtype=bool)
        self.dissat = np.zeros(n)
        self.expected_spend = pop.expected_daily_spend
        self.ewm_short = self.expected_spend.copy()
        self.ewm_long = self.expected_spend.copy()
        # Seed "days since the last purchase" of the initial base from its stationary distribution.
        first = -BURN_IN_DAYS
        gap = rng.exponential(1.0 / np.maximum(pop.purchase_rate, 1e-4)).astype(np.int64)
        self.last_purchase_day = np.maximum(pop.signup_day.astype(np.int64), first - gap).astype(np.int32)
        self.last_purchase_day = np.where(pop.signup_day >= first, pop.signup_day, self.last_purchase_day)
        self.month_spend = np.zeros(n, dtype=np.int64)  # cents
        self.statement = np.zeros(n, dtype=np.int64)
        self.calls_ring = np.zeros((30, n), dtype=np.uint8)
        self.calls30 = np.zeros(n, dtype=np.int16)
        self.last_cancel_day = np.full(n, NO_DAY, dtype=np.int32)
        self.n_open = np.zeros(n, dtype=np.int16)
        self.n_breached = np.zeros(n, dtype=np.int16)
        self.hazard = np.zeros(n)
        self.complaints = _Complaints()
        self.pending_refunds: dict[int, list[dict[str, np.ndarray]]] = {}
        self.pending_calls: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.txn_seq = 1
        self.call_seq = 1
        self.complaint_seq = 1
        # The ends of the sign-up order: customers [0, n_active) have signed up.
        self._signup_sorted = pop.signup_day
        # Agent pools sized for the expected call volume of the whole base.
        expected_calls = CALL_RATE * float(np.sum(pop.call_propensity[: pop.n_initial])) * 1.2
        sizes = np.maximum(2, np.ceil(expected_calls / 35 * _QUEUE_AGENT_SHARE)).astype(np.int64)
        self.agent_pool_size = sizes
        self.agent_pool_start = np.concatenate([[1], 1 + np.cumsum(sizes)[:-1]])
        self.call_forecast = expected_calls  # inbound calls on an ordinary day, before calendar effects
        sd = category_table(CATEGORY_WEIGHTS_PRIVATE), category_table(CATEGORY_WEIGHTS_BUSINESS)
        self._cat_tables = np.stack(sd)
        self._cat_shift = category_shift()

    # ---- helpers ---------------------------------------------------------------------------
    def date(self, d: int) -> np.datetime64:
        return self.start + d

    # ---- one day ---------------------------------------------------------------------------
    def step(self, d: int) -> DayEvents | None:
        """Advance to the end of day `d`; returns its events (None during the burn-in, d < 0)."""
        emit = d >= 0
        rng = self.rng
        lo = self.n_active
        hi = int(np.searchsorted(self._signup_sorted, d, side="right"))
        self.alive[lo:hi] = True
        self.n_active = hi
        n = hi
        new_signups = np.arange(lo, hi) if emit and d > 0 else np.zeros(0, dtype=np.int64)
        if emit and d == 0:
            new_signups = np.arange(0, hi)

        # -- churn ---------------------------------------------------------------------------
        alive = self.alive[:n]
        u = rng.random(n)
        churn = alive & (u < self.hazard[:n])
        churn[lo:hi] = False  # nobody churns on the day they sign up
        churners = np.flatnonzero(churn)
        closed = np.zeros(0, dtype=np.int64)
        if emit:
            mode = np.where(rng.random(len(churners)) < CLOSED_SHARE, 1, 2).astype(np.int8)
            self.alive[churners] = False
            self.churn_day[churners] = d
            self.churn_mode[churners] = mode
            closed = churners[mode == 1]
        else:
            self._reset(churners, d)  # burn-in: keep the base, forget the churner's history
        alive = self.alive[:n]

        # -- customer record changes -----------------------------------------------------------
        customers = self._customer_changes(d, n, alive, new_signups, closed) if emit else None

        # -- money -----------------------------------------------------------------------------
        txn, consumers = self._transactions(d, n, alive)

        # -- calls and complaints ----------------------------------------------------------------
        calls, complaint_calls = self._calls(d, n, alive)
        complaints = self._complaints(d, n, alive, complaint_calls)

        # -- latent dynamics and the next day's hazard --------------------------------------------
        self._dynamics(d, n, alive)
        self.hazard[:n] = self.compute_hazard(d)

        if not emit:
            return None
        assert customers is not None
        return DayEvents(d, customers, txn, calls, complaints, consumers)

    def _reset(self, who: np.ndarray, d: int) -> None:
        self.last_purchase_day[who] = d
        self.at_risk[who] = False
        self.engagement[who] = 1.0
        self.dissat[who] = 0.0
        self.ewm_short[who] = self.expected_spend[who]
        self.ewm_long[who] = self.expected_spend[who]
        self.last_cancel_day[who] = NO_DAY

    def compute_hazard(self, d: int) -> np.ndarray:
        """Daily churn hazard for day d+1 from the state at the end of day d (see truth.py)."""
        n = self.n_active
        pop = self.pop
        gap = (d - self.last_purchase_day[:n]).astype(np.float64)
        expected_gaps = gap * pop.purchase_rate[:n]  # the gap measured in the customer's own habit
        gap_effect = np.log1p(np.maximum(expected_gaps - 1.0, 0.0))
        long = self.ewm_long[:n]
        ratio = self.ewm_short[:n] / np.maximum(long, 1e-6)
        weight = np.minimum(pop.purchase_rate[:n] * DECLINE_FULL_WEIGHT_DAYS, 1.0)
        decline = np.where(long > 1e-6, weight * np.clip(1.0 - ratio, 0.0, 1.0), 0.0)
        complaints = np.minimum(self.n_open[:n] + BREACH_WEIGHT * self.n_breached[:n], 6.0)
        calls = np.minimum(self.calls30[:n], 8).astype(np.float64)
        cancel = (d - self.last_cancel_day[:n]) < CANCEL_WINDOW
        h = H0 * np.exp(
            B_GAP * gap_effect
            + B_DECLINE * decline
            + B_COMPLAINT * complaints
            + B_CALLS * calls
            + B_CANCEL * cancel
        )
        h = np.minimum(h, H_MAX)
        h[~self.alive[:n]] = 0.0
        return h

    def _customer_changes(
        self, d: int, n: int, alive: np.ndarray, new_signups: np.ndarray, closed: np.ndarray
    ) -> CustomerBatch:
        """Rows of the customers file: sign-ups (on day 0: the whole base), closures and changes."""
        rng = self.rng
        pop = self.pop
        ids = pop.identities
        if d == 0:  # the initial base already shows its latest state
            changed = np.zeros(0, dtype=np.int64)
            phone_change = email_change = moved = changed
        else:
            known = np.flatnonzero(alive & (pop.signup_day[:n] < d))
            phone_change = known[rng.random(len(known)) < 0.0002]
            email_change = known[rng.random(len(known)) < 0.00025]
            moved = known[rng.random(len(known)) < 0.00008]
            changed = np.concatenate([phone_change, email_change, moved])
        new_phone = draw_phones(rng, len(phone_change))
        ids.phone[phone_change] = np.where(new_phone == 0, 13800138000 + phone_change, new_phone)
        ids.email_variant[email_change] += 1
        ids.email_style[email_change] = np.maximum(ids.email_style[email_change], 0)
        shift = rng.integers(1, len(spec.REGIONS), size=len(moved))  # a move always changes the region
        pop.region[moved] = (pop.region[moved] + shift) % len(spec.REGIONS)

        rows = np.unique(np.concatenate([new_signups, closed, changed])).astype(np.int64)
        k = len(rows)
        updated_day = np.full(k, d, dtype=np.int32)
        updated_sec = rng.integers(8 * 3600, 22 * 3600, size=k).astype(np.int32)
        is_new = np.isin(rows, new_signups)
        signed_today = is_new & (pop.signup_day[rows] == d)
        updated_sec[signed_today] = pop.signup_sec[rows[signed_today]]
        from_base = is_new & ~signed_today  # day 0 only: the last change before the period
        updated_day[from_base] = pop.base_updated_day[rows[from_base]]
        updated_sec[from_base] = pop.base_updated_sec[rows[from_base]]
        is_closed = np.isin(rows, closed)
        closed_sec = np.where(is_closed, rng.integers(9 * 3600, 20 * 3600, size=k), -1).astype(np.int32)
        updated_day[is_closed] = d
        updated_sec[is_closed] = closed_sec[is_closed]
        return CustomerBatch(
            cust=rows,
            full_name=render_names(ids, rows),
            phone_text=render_phones(ids, rows),
            email_text=render_emails(ids, rows),
            region=pop.region[rows].copy(),
            status=is_closed.astype(np.int8),
            closed_sec=closed_sec,
            updated_day=updated_day,
            updated_sec=updated_sec,
        )

    def _transactions(self, d: int, n: int, alive: np.ndarray) -> tuple[TransactionBatch, np.ndarray]:
        rng = self.rng
        pop = self.pop
        day = np.array([self.date(d)])
        m = float(calendar.purchase_multiplier(day)[0])
        singles = bool(calendar.singles_day(day)[0])
        dom = int(calendar.day_of_month(day)[0])
        parts: list[dict[str, np.ndarray]] = []

        # purchases
        rate = pop.purchase_rate[:n] * self.engagement[:n] * m * alive
        cust = poisson_events(rng, rate)
        k = len(cust)
        biz = pop.is_business[cust].astype(np.int64)
        tables = self._cat_tables.copy()
        if singles:
            boost = np.ones(len(spec.PRODUCT_CATEGORIES))
            boost[
                [spec.PRODUCT_CATEGORIES.index("electronics"), spec.PRODUCT_CATEGORIES.index("apparel")]
            ] = 3.0
            tables = tables * boost
        category = _categorical(rng, tables, biz, k)
        amount = np.exp(
            pop.ticket_mu[cust] + self._cat_shift[category] + TICKET_SIGMA * rng.standard_normal(k)
        )
        cents = np.maximum(100, np.round(amount * 100)).astype(np.int64)
        dig = pop.digital[cust]
        online_bias = np.isin(
            category, [spec.PRODUCT_CATEGORIES.index(c) for c in ("electronics", "apparel", "travel")]
        )
        p_mobile = 0.15 + 0.55 * dig
        p_online = 0.05 + 0.25 * dig + 0.1 * online_bias
        uu = rng.random(k)
        channel = np.where(
            uu < p_mobile,
            CH["mobile"],
            np.where(
                uu < p_mobile + p_online,
                CH["online"],
                np.where(uu < p_mobile + p_online + 0.005, CH["branch"], CH["pos"]),
            ),
        )
        sec = _seconds(rng, HOURS_SINGLES_DAY if singles else HOURS_PURCHASE, k)
        parts.append(
            {
                "cust": cust,
                "sec": sec,
                "txn_type": np.full(k, TT["purchase"]),
                "channel": channel,
                "cents": cents,
                "category": category,
            }
        )
        self.last_purchase_day[cust] = d
        spend_today = np.bincount(cust, weights=cents / 100.0, minlength=n)
        self.month_spend[:n] += np.bincount(cust, weights=cents, minlength=n).astype(np.int64)

        # schedule refunds of a few purchases
        ref = rng.random(k) < REFUND_SHARE
        if ref.any():
            r_cust = cust[ref]
            due = d + 1 + np.minimum(rng.geometric(0.25, size=len(r_cust)) - 1, 29)
            full = rng.random(len(r_cust)) < 0.7
            r_cents = np.where(
                full,
                cents[ref],
                np.maximum(100, (cents[ref] * rng.uniform(0.2, 0.9, len(r_cust))).astype(np.int64)),
            )
            for day_due in np.unique(due):
                sel = due == day_due
                self.pending_refunds.setdefault(int(day_due), []).append(
                    {
                        "cust": r_cust[sel],
                        "cents": r_cents[sel],
                        "category": category[ref][sel],
                        "channel": channel[ref][sel],
                    }
                )

        # refunds due today (cancelled for customers who churned since)
        due_today = self.pending_refunds.pop(d, [])
        if due_today:
            r = {key: np.concatenate([b[key] for b in due_today]) for key in due_today[0]}
            keep = self.alive[r["cust"]]
            r = {key: v[keep] for key, v in r.items()}
            kr = len(r["cust"])
            parts.append(
                {
                    "cust": r["cust"],
                    "sec": _seconds(rng, HOURS_BANKING, kr),
                    "txn_type": np.full(kr, TT["refund"]),
                    "channel": r["channel"],
                    "cents": r["cents"],
                    "category": r["category"],
                }
            )
            self.month_spend[:n] -= np.bincount(r["cust"], weights=r["cents"], minlength=n).astype(np.int64)
            refund_cust = r["cust"]
        else:
            refund_cust = np.zeros(0, dtype=np.int64)

        # statements: roll over on the 1st, paid on each customer's payment day
        if dom == 1:
            self.statement[:n] = np.maximum(self.month_spend[:n], 0)
            self.month_spend[:n] = 0
        if dom <= 28:
            payers = np.flatnonzero(
                alive & pop.has_credit[:n] & (pop.pay_dom[:n] == dom) & (self.statement[:n] > 0)
            )
            kp = len(payers)
            full = rng.random(kp) < np.where(self.at_risk[payers], 0.45, 0.7)
            frac = np.where(full, 1.0, rng.uniform(0.1, 0.9, kp))
            owed = self.statement[payers]
            pay = np.minimum(owed, np.maximum(100, (owed * frac).astype(np.int64)))
            pch = self._banking_channel(payers)
            psec = _seconds(rng, HOURS_BANKING, kp)
            parts.append(
                {
                    "cust": payers,
                    "sec": psec,
                    "txn_type": np.full(kp, TT["payment"]),
                    "channel": pch,
                    "cents": pay,
                    "category": np.full(kp, -1),
                }
            )
            self.statement[payers] = 0
            late = (owed > pay) & (rng.random(kp) < 0.15)
            fee = np.clip(((owed - pay)[late] * 0.05).astype(np.int64), 1000, 30000)
            kl = int(late.sum())
            parts.append(
                {
                    "cust": payers[late],
                    "sec": np.minimum(psec[late] + 3600, 86399),
                    "txn_type": np.full(kl, TT["fee"]),
                    "channel": np.full(kl, CH["online"]),
                    "cents": fee,
                    "category": np.full(kl, -1),
                }
            )
            self.dissat[payers[late]] += 0.3
        if dom == 1:
            biz_alive = np.flatnonzero(alive & pop.is_business[:n])
            kb = len(biz_alive)
            fee = np.array([3000, 5000, 10000, 20000])[biz_alive % 4]
            parts.append(
                {
                    "cust": biz_alive,
                    "sec": rng.integers(0, 2 * 3600, kb).astype(np.int32),
                    "txn_type": np.full(kb, TT["fee"]),
                    "channel": np.full(kb, CH["online"]),
                    "cents": fee,
                    "category": np.full(kb, -1),
                }
            )

        # transfers and withdrawals
        soft = np.sqrt(self.engagement[:n]) * alive
        biz_n = pop.is_business[:n]
        t_rate = np.where(biz_n, TRANSFER_RATE[1], TRANSFER_RATE[0]) * (0.5 + pop.digital[:n]) * soft
        tc = poisson_events(rng, t_rate)
        kt = len(tc)
        t_cents = (
            np.exp(np.where(pop.is_business[tc], np.log(12000), np.log(600)) + rng.standard_normal(kt)) * 100
        )
        parts.append(
            {
                "cust": tc,
                "sec": _seconds(rng, HOURS_BANKING, kt),
                "txn_type": np.full(kt, TT["transfer"]),
                "channel": self._banking_channel(tc),
                "cents": np.maximum(100, t_cents.astype(np.int64)),
                "category": np.full(kt, -1),
            }
        )
        wm = float(calendar.withdrawal_multiplier(day)[0])
        w_rate = np.where(biz_n, WITHDRAWAL_RATE[1], WITHDRAWAL_RATE[0] * (1.2 - pop.digital[:n])) * wm * soft
        wc = poisson_events(rng, w_rate)
        kw = len(wc)
        w_cents = 10000 * np.minimum(rng.geometric(0.35, kw), 30)
        atm = rng.random(kw) < 0.88
        wsec = _seconds(rng, HOURS_BANKING, kw)
        parts.append(
            {
                "cust": wc,
                "sec": wsec,
                "txn_type": np.full(kw, TT["withdrawal"]),
                "channel": np.where(atm, CH["atm"], CH["branch"]),
                "cents": w_cents,
                "category": np.full(kw, -1),
            }
        )
        atm_fee = atm & (rng.random(kw) < 0.3)
        kf = int(atm_fee.sum())
        parts.append(
            {
                "cust": wc[atm_fee],
                "sec": np.minimum(wsec[atm_fee] + 1, 86399),
                "txn_type": np.full(kf, TT["fee"]),
                "channel": np.full(kf, CH["atm"]),
                "cents": rng.choice([200, 250, 300, 400], kf),
                "category": np.full(kf, -1),
            }
        )
        self.dissat[wc[atm_fee]] += 0.05

        # spend averages (purchases only)
        a_s = 1 - 0.5 ** (1 / EWM_SHORT_HALF_LIFE)
        a_l = 1 - 0.5 ** (1 / EWM_LONG_HALF_LIFE)
        self.ewm_short[:n] += a_s * (spend_today - self.ewm_short[:n]) * alive
        self.ewm_long[:n] += a_l * (spend_today - self.ewm_long[:n]) * alive

        batch = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        order = np.lexsort((batch["cust"], batch["sec"]))
        batch = {key: v[order] for key, v in batch.items()}
        first = self.txn_seq
        if d >= 0:
            self.txn_seq += len(order)
        consumers = np.concatenate([cust, refund_cust])
        return (
            TransactionBatch(
                first_id=first,
                cust=batch["cust"],
                sec=batch["sec"].astype(np.int32),
                txn_type=batch["txn_type"].astype(np.int8),
                channel=batch["channel"].astype(np.int8),
                cents=batch["cents"].astype(np.int64),
                category=batch["category"].astype(np.int8),
            ),
            consumers,
        )

    def _banking_channel(self, cust: np.ndarray) -> np.ndarray:
        dig = self.pop.digital[cust]
        u = self.rng.random(len(cust))
        return np.where(
            u < 0.1 + 0.7 * dig, CH["mobile"], np.where(u < 0.25 + 0.8 * dig, CH["online"], CH["branch"])
        )

    def _calls(self, d: int, n: int, alive: np.ndarray) -> tuple[CallBatch, np.ndarray]:
        rng = self.rng
        pop = self.pop
        day = np.array([self.date(d)])
        cm = float(calendar.call_multiplier(day)[0])
        open_c = np.minimum(self.n_open[:n], 3)
        risk = self.at_risk[:n]
        rate = (
            CALL_RATE
            * pop.call_propensity[:n]
            * (1 + 1.5 * risk)
            * (1 + 0.6 * open_c)
            * (1 + 0.25 * np.minimum(self.dissat[:n], 4))
            * cm
            * alive
        )
        c_in = poisson_events(rng, rate)
        group = np.where(self.at_risk[c_in], 2, np.where(self.n_open[c_in] > 0, 1, 0))
        r_in = _categorical(rng, _REASON_MIX, group, len(c_in))
        at_risk_idx = np.flatnonzero(risk & alive)
        c_cancel = at_risk_idx[rng.random(len(at_risk_idx)) < CANCEL_CALL_RATE * min(cm, 1.2)]
        due = self.pending_calls.pop(d, [])
        if due:
            rc = np.concatenate([x[0] for x in due])
            rr = np.concatenate([x[1] for x in due])
            keep = self.alive[rc]
            rc, rr = rc[keep], rr[keep]
        else:
            rc = rr = np.zeros(0, dtype=np.int64)
        cust_in = np.concatenate([c_in, c_cancel, rc]).astype(np.int64)
        reason_in = np.concatenate([r_in, np.full(len(c_cancel), REASONS["cancel_request"]), rr]).astype(
            np.int8
        )
        k_in = len(cust_in)
        c_out = poisson_events(rng, OUTBOUND_RATE * alive.astype(np.float64))
        k_out = len(c_out)
        r_out = _categorical(
            rng,
            _by_name(
                spec.CALL_REASONS,
                {
                    "billing": 0.1,
                    "technical": 0,
                    "cancel_request": 0,
                    "inquiry": 0.1,
                    "complaint": 0,
                    "account_change": 0,
                    "sales": 0.8,
                },
            ),
            None,
            k_out,
        )
        cust = np.concatenate([cust_in, c_out])
        reason = np.concatenate([reason_in, r_out])
        k = len(cust)
        inbound = np.arange(k) < k_in
        direction = np.where(inbound, 0, 1).astype(np.int8)
        queue = np.where(inbound, _REASON_QUEUE[reason], QUEUES["general"]).astype(np.int8)
        queue[inbound & pop.is_vip[cust]] = QUEUES["vip"]
        sec = _seconds(rng, HOURS_CALLS, k)

        # Staff is planned from a trailing forecast of the volume; waits grow with the day's load
        # (calls per planned capacity, so surges and thin weekend shifts hurt) and the hour's load.
        capacity = self.call_forecast * float(calendar.staffing(day)[0]) * 1.1
        load = k_in / max(capacity, 1e-9)
        self.call_forecast += (1 - 0.5 ** (1 / 28)) * (k_in / cm - self.call_forecast)
        hour_load = HOURS_CALLS[sec // 3600] / HOURS_CALLS[HOURS_CALLS > 0].mean()
        wait = _QUEUE_WAIT_MEDIAN[queue] * load**2.5 * hour_load * np.exp(0.8 * rng.standard_normal(k))
        wait = np.where(inbound, wait, np.exp(np.log(12) + 0.4 * rng.standard_normal(k)))
        wait = np.minimum(wait, 3600).astype(np.int64)
        patience = rng.exponential(
            np.where(queue == QUEUES["vip"], 600, np.where(reason == REASONS["cancel_request"], 420, 360))
        )
        abandoned = inbound & (wait > patience)
        wait = np.where(abandoned, patience.astype(np.int64), wait)
        unanswered_out = (~inbound) & (rng.random(k) < 0.35)
        talk = np.exp(np.log(_TALK_MEDIAN[reason]) + 0.6 * rng.standard_normal(k)).astype(np.int64) + 5
        talk[abandoned | unanswered_out] = 0
        transfers = np.where(rng.random(k) < _TRANSFER_P[reason], 1 + (rng.random(k) < 0.2), 0)
        transfers[abandoned | unanswered_out] = 0
        resolved = rng.random(k) < _RESOLVE_P[reason] * np.where(wait > 600, 0.85, 1.0)
        outcome = np.where(
            abandoned,
            OUTCOMES["abandoned"],
            np.where(
                unanswered_out,
                OUTCOMES["callback"],
                np.where(
                    resolved,
                    OUTCOMES["resolved"],
                    np.where(transfers > 0, OUTCOMES["transferred"], OUTCOMES["callback"]),
                ),
            ),
        ).astype(np.int8)
        agent = self.agent_pool_start[queue] + (rng.random(k) * self.agent_pool_size[queue]).astype(np.int64)
        agent[abandoned] = -1

        # effects on the callers
        counts = np.bincount(cust_in, minlength=n)
        slot = d % 30
        self.calls30[:n] -= self.calls_ring[slot, :n]
        self.calls_ring[slot, :n] = np.minimum(counts, 255)
        self.calls30[:n] += self.calls_ring[slot, :n]
        unresolved = inbound & (outcome != OUTCOMES["resolved"])
        np.add.at(self.dissat, cust[abandoned], 0.35)
        np.add.at(self.dissat, cust[unresolved & ~abandoned], 0.25)
        np.add.at(self.dissat, cust[inbound & (wait > 600)], 0.2)
        cancel = inbound & (reason == REASONS["cancel_request"])
        self.last_cancel_day[cust[cancel]] = d
        saved = cust[cancel & (outcome == OUTCOMES["resolved"]) & (rng.random(k) < SAVE_SHARE)]
        self.at_risk[saved] = False
        self.dissat[saved] *= 0.5
        repeat = unresolved & (rng.random(k) < REPEAT_SHARE)
        if repeat.any():
            due_day = d + np.minimum(rng.geometric(0.5, int(repeat.sum())), 6)
            for dd in np.unique(due_day):
                sel = due_day == dd
                self.pending_calls.setdefault(int(dd), []).append((cust[repeat][sel], reason[repeat][sel]))
        answered = ~abandoned & inbound
        complaint_calls = cust[
            answered
            & (
                ((reason == REASONS["complaint"]) & (rng.random(k) < 0.6))
                | ((reason == REASONS["billing"]) & unresolved & (rng.random(k) < 0.1))
            )
        ]

        shown = cust.copy()
        shown[inbound & (rng.random(k) < UNIDENTIFIED_SHARE)] = -1
        order = np.lexsort((np.arange(k), sec))
        first = self.call_seq
        if d >= 0:
            self.call_seq += k
        batch = CallBatch(
            first_id=first,
            cust=shown[order],
            sec=sec[order],
            direction=direction[order],
            reason=reason[order],
            queue=queue[order],
            agent=agent[order],
            wait=wait[order],
            talk=talk[order],
            outcome=outcome[order],
            transfers=transfers[order].astype(np.int64),
        )
        return batch, complaint_calls

    def _complaints(self, d: int, n: int, alive: np.ndarray, from_calls: np.ndarray) -> ComplaintBatch:
        rng = self.rng
        pop = self.pop
        day = np.array([self.date(d)])
        rate = (
            COMPLAINT_RATE
            * pop.complaint_propensity[:n]
            * (1 + 2 * self.at_risk[:n])
            * (1 + 0.3 * np.minimum(self.dissat[:n], 5))
            * float(calendar.complaint_multiplier(day)[0])
            * alive
        )
        direct = poisson_events(rng, rate)
        cust = np.concatenate([from_calls, direct]).astype(np.int64)
        k = len(cust)
        channel = _categorical(
            rng, _COMPLAINT_CHANNEL_MIX, (pop.digital[direct] > 0.5).astype(np.int64), len(direct)
        )
        channel = np.concatenate([np.full(len(from_calls), spec.COMPLAINT_CHANNELS.index("phone")), channel])
        severity = _categorical(rng, _SEVERITY, None, k)
        category = _categorical(rng, _COMPLAINT_CATEGORY, None, k)
        phone = channel == spec.COMPLAINT_CHANNELS.index("phone")
        open_sec = np.where(phone, _seconds(rng, HOURS_CALLS, k), _seconds(rng, HOURS_DIGITAL, k))
        ip_day = d + rng.geometric(_IN_PROGRESS_P[severity])
        sla = SLA_DAYS[severity]
        delay = np.maximum(1, np.round(np.exp(np.log(0.6 * sla) + 0.6 * rng.standard_normal(k)))).astype(
            np.int64
        )
        slow = rng.random(k) < SLOW_SHARE
        delay = np.where(slow, (delay * rng.uniform(3, 6, k)).astype(np.int64), delay)
        resolve_day = np.maximum(ip_day + 1, d + delay)
        ids = np.arange(self.complaint_seq, self.complaint_seq + k)
        self.complaint_seq += k
        self.complaints.add(
            {
                "complaint_id": ids,
                "cust": cust,
                "open_day": np.full(k, d),
                "open_sec": open_sec,
                "channel": channel,
                "category": category,
                "severity": severity,
                "ip_day": ip_day,
                "ip_sec": _seconds(rng, HOURS_OFFICE, k),
                "resolve_day": resolve_day,
                "resolve_sec": _seconds(rng, HOURS_OFFICE, k),
            }
        )
        np.add.at(self.dissat, cust, 0.8)

        c = self.complaints.cols
        new = c["open_day"] == d
        ip = c["ip_day"] == d
        res = c["resolve_day"] == d
        m = len(self.complaints)
        status = np.full(m, C_STATUS["open"], dtype=np.int8)
        status[ip] = C_STATUS["in_progress"]
        status[res] = C_STATUS["resolved"]
        updated_sec = np.where(new, c["open_sec"], np.where(ip, c["ip_sec"], c["resolve_sec"]))

        # outcome of the cases resolved today
        ratio = (c["resolve_day"] - c["open_day"]) / SLA_DAYS[c["severity"]]
        comp_p = 0.1 + 0.2 * (c["severity"] >= 2) + 0.25 * (ratio > 1)
        compensated = res & (rng.random(m) < comp_p)
        comp = np.exp(np.log(80) + np.log(3) * (c["severity"] >= 2) + 0.7 * rng.standard_normal(m))
        comp_cents = np.where(compensated, np.maximum(1000, (comp * 100).astype(np.int64) // 100 * 100), -1)
        latent = (
            4.5
            - 0.8 * np.minimum(np.maximum(ratio - 1, 0), 4)
            - 0.3 * c["severity"]
            + 0.5 * compensated
            + 0.7 * rng.standard_normal(m)
        )
        sat = np.clip(np.round(latent), 1, 5).astype(np.int64)
        rated = res & (rng.random(m) < 0.85) & self.alive[c["cust"]]
        sat = np.where(rated, sat, 0)
        self.dissat[c["cust"][rated & (sat <= 2)]] += 1.5
        happy = c["cust"][rated & (sat >= 4)]
        self.dissat[happy] = np.maximum(self.dissat[happy] - 0.5, 0)
        breach_today = (~res) & (c["resolve_day"] > d) & (d - c["open_day"] == SLA_DAYS[c["severity"]] + 1)
        np.add.at(self.dissat, c["cust"][breach_today], 1.2)

        rows = new | ip | res
        batch = ComplaintBatch(
            complaint_id=c["complaint_id"][rows],
            cust=c["cust"][rows],
            open_day=c["open_day"][rows],
            open_sec=c["open_sec"][rows],
            channel=c["channel"][rows],
            category=c["category"][rows],
            severity=c["severity"][rows],
            status=status[rows],
            resolved_day=np.where(res, c["resolve_day"], NO_DAY)[rows],
            resolved_sec=c["resolve_sec"][rows],
            comp_cents=comp_cents[rows],
            satisfaction=sat[rows],
            updated_sec=updated_sec[rows],
        )
        order = np.lexsort((batch.complaint_id, batch.updated_sec))
        for name in batch.__dataclass_fields__:
            setattr(batch, name, getattr(batch, name)[order])

        self.complaints.keep(~res)
        c = self.complaints.cols
        self.n_open[:] = np.bincount(c["cust"], minlength=pop.n)
        breached = (d - c["open_day"]) > SLA_DAYS[c["severity"]]
        self.n_breached[:] = np.bincount(c["cust"][breached], minlength=pop.n)
        return batch

    def _dynamics(self, d: int, n: int, alive: np.ndarray) -> None:
        rng = self.rng
        pop = self.pop
        risk = self.at_risk[:n]
        tenure = d - pop.signup_day[:n]
        p_enter = (
            AT_RISK_ENTRY
            * pop.frailty[:n]
            * (1 + 1.5 * (tenure < 180))
            * (1 + 0.8 * np.minimum(self.dissat[:n], 6))
        )
        u = rng.random(n)
        enter = alive & ~risk & (u < p_enter)
        recover = alive & risk & (u < AT_RISK_RECOVERY)
        risk[enter] = True
        risk[recover] = False
        e = self.engagement[:n]
        e[:] = np.where(risk, e * np.exp(-DECAY_AT_RISK), e + RELAX_HEALTHY * (1 - e))
        self.dissat[:n] *= 0.5 ** (1 / DISSAT_HALF_LIFE)
