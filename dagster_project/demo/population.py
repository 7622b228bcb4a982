"""Who the customers are: latent traits, sign-up dates and identities, drawn once per run.

Customer ids are given in sign-up order (C00000001 is the oldest customer). About 70% of the
customers exist on the first day of the period with sign-up dates spread over the previous
years; the rest sign up during the period, more in promotion seasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dagster_project.demo import calendar
from dagster_project.demo.names import Identities, draw_identities
from dagster_project.extracts import spec

INITIAL_SHARE = 0.70
BUSINESS_SHARE = 0.08
# fmt: off
REGION_WEIGHTS = {
    "north": 0.15, "northeast": 0.07, "east": 0.30, "central": 0.12,
    "south": 0.20, "southwest": 0.10, "northwest": 0.06,
}
# Purchase categories: weights for private and business customers, and log-ticket shifts.
CATEGORY_WEIGHTS_PRIVATE = {
    "groceries": 0.25, "dining": 0.22, "travel": 0.05, "electronics": 0.06, "apparel": 0.12,
    "utilities": 0.10, "entertainment": 0.08, "health": 0.06, "other": 0.06,
}
CATEGORY_WEIGHTS_BUSINESS = {
    "groceries": 0.05, "dining": 0.15, "travel": 0.20, "electronics": 0.20, "apparel": 0.02,
    "utilities": 0.15, "entertainment": 0.03, "health": 0.02, "other": 0.18,
}
CATEGORY_LOG_SHIFT = {
    "groceries": -0.6, "dining": -0.5, "travel": 1.2, "electronics": 1.0, "apparel": 0.1,
    "utilities": -0.2, "entertainment": -0.3, "health": 0.0, "other": 0.0,
}
# fmt: on
TICKET_SIGMA = 0.55


def category_table(weights: dict[str, float]) -> np.ndarray:
    """Weights in the order of spec.PRODUCT_CATEGORIES (every category must be listed)."""
    w = np.array([weights[c] for c in spec.PRODUCT_CATEGORIES], dtype=float)
    return w / w.sum()


def category_shift() -> np.ndarray:
    return np.array([CATEGORY_LOG_SHIFT[c] for c in spec.PRODUCT_CATEGORIES])


@dataclass
class Population:
    n: int
    n_initial: int
    signup_day: np.ndarray  # int32, day index relative to the first day of the period
    signup_sec: np.ndarray  # int32, second of the day
    base_updated_day: np.ndarray  # int32, last change before the period (initial base; others = signup)
    base_updated_sec: np.ndarray
    region: np.ndarray  # int8 index into spec.REGIONS (changes when a customer moves)
    is_business: np.ndarray  # bool
    purchase_rate: np.ndarray  # purchases per day at full engagement and an ordinary weekday
    ticket_mu: np.ndarray  # log of the typical ticket (CNY)
    digital: np.ndarray  # 0..1 preference for mobile/online channels
    frailty: np.ndarray  # multiplier of the rate of becoming at risk
    call_propensity: np.ndarray
    complaint_propensity: np.ndarray
    has_credit: np.ndarray  # bool: gets a monthly statement to pay
    pay_dom: np.ndarray  # int8 day of month the statement is paid
    is_vip: np.ndarray  # bool: top customers by expected spend, served by the vip queue
    identities: Identities

    @property
    def expected_daily_spend(self) -> np.ndarray:
        """Expected purchase spend per day at full engagement (CNY), used to seed spend averages."""
        shift = category_shift()
        mix_p = np.exp(shift) @ category_table(CATEGORY_WEIGHTS_PRIVATE)
        mix_b = np.exp(shift) @ category_table(CATEGORY_WEIGHTS_BUSINESS)
        mix = np.where(self.is_business, mix_b, mix_p)
        return self.purchase_rate * np.exp(self.ticket_mu + TICKET_SIGMA**2 / 2) * mix


def draw_population(rng: np.random.Generator, customers: int, days: int, start: np.datetime64) -> Population:
    n = customers
    n_initial = round(n * INITIAL_SHARE)
    n_new = n - n_initial

    # Tenure of the initial base: a mix of recent (exponential) and long-standing customers.
    recent = rng.exponential(900.0, size=n_initial)
    old = rng.uniform(0, 12 * 365, size=n_initial)
    recent = np.where(recent > 12 * 365, old, recent)
    before = 1 + np.where(rng.random(n_initial) < 0.6, recent, old).astype(np.int64)
    initial_days = np.sort(-before)
    period = np.arange(days) + start
    w = calendar.signup_weights(period)
    new_counts = rng.multinomial(n_new, w / w.sum())
    new_days = np.repeat(np.arange(days), new_counts)
    signup_day = np.concatenate([initial_days, new_days]).astype(np.int32)

    hours = rng.choice(24, size=n, p=_signup_hours())
    signup_sec = (hours * 3600 + rng.integers(0, 3600, size=n)).astype(np.int32)
    base_updated_day = signup_day.copy()
    base_updated_sec = signup_sec.copy()
    span = -signup_day[:n_initial].astype(np.int64)
    changed = rng.random(n_initial) < 0.5
    offset = (rng.random(n_initial) * span).astype(np.int64)
    base_updated_day[:n_initial] = np.where(changed, signup_day[:n_initial] + offset, signup_day[:n_initial])
    same_day = base_updated_day == signup_day
    later_sec = rng.integers(8 * 3600, 22 * 3600, size=n).astype(np.int32)
    base_updated_sec = np.where(same_day, signup_sec, later_sec).astype(np.int32)

    rw = np.array([REGION_WEIGHTS[r] for r in spec.REGIONS])
    region = rng.choice(len(spec.REGIONS), size=n, p=rw / rw.sum()).astype(np.int8)
    is_business = rng.random(n) < BUSINESS_SHARE

    digital = rng.beta(2.2, 1.6, size=n)
    region_name = np.array(spec.REGIONS)[region]
    digital += np.where(np.isin(region_name, ("east", "south")), 0.08, 0.0)
    digital -= np.where(np.isin(region_name, ("northeast", "northwest")), 0.08, 0.0)
    digital -= np.where(signup_day < -5 * 365, 0.06, 0.0) + np.where(is_business, 0.1, 0.0)
    digital = np.clip(digital, 0.02, 0.98)

    rate_mean = np.where(is_business, 0.13, 0.085)
    purchase_rate = rng.gamma(1.1, 1.0, size=n) / 1.1 * rate_mean
    ticket_mu = np.where(
        is_business, rng.normal(np.log(650), 0.55, size=n), rng.normal(np.log(110), 0.45, size=n)
    )
    frailty = rng.lognormal(0.0, 0.7, size=n)
    frailty /= np.exp(0.7**2 / 2)
    call_propensity = rng.lognormal(0.0, 0.6, size=n) / np.exp(0.6**2 / 2) * np.where(is_business, 1.5, 1.0)
    complaint_propensity = rng.lognormal(0.0, 0.8, size=n) / np.exp(0.8**2 / 2)
    has_credit = rng.random(n) < np.where(is_business, 0.8, 0.55)
    pay_dom = rng.integers(1, 29, size=n).astype(np.int8)
    identities = draw_identities(rng, is_business)

    pop = Population(
        n=n,
        n_initial=n_initial,
        signup_day=signup_day,
        signup_sec=signup_sec,
        base_updated_day=base_updated_day.astype(np.int32),
        base_updated_sec=base_updated_sec,
        region=region,
        is_business=is_business,
        purchase_rate=purchase_rate,
        ticket_mu=ticket_mu,
        digital=digital,
        frailty=frailty,
        call_propensity=call_propensity,
        complaint_propensity=complaint_propensity,
        has_credit=has_credit,
        pay_dom=pay_dom,
        is_vip=np.zeros(n, dtype=bool),
        identities=identities,
    )
    spend = pop.expected_daily_spend
    pop.is_vip = spend >= np.quantile(spend, 0.97)
    return pop


def _signup_hours() -> np.ndarray:
    w = np.array(
        [
            0.2,
            0.1,
            0.05,
            0.05,
            0.05,
            0.1,
            0.3,
            0.8,
            1.5,
            2.5,
            3,
            3,
            2.5,
            2.5,
            3,
            3,
            2.8,
            2.5,
            2.5,
            3,
            3.2,
            3,
            2,
            0.8,
        ]
    )
    return w / w.sum()
