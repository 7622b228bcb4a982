"""Calendar effects: weekday patterns, shopping festivals and the Spring Festival.

Everything is a pure function of the date, so the ground truth can evaluate the same
multipliers for days after the end of the period.
"""

from __future__ import annotations

from datetime import date

import numpy as np

# Chinese New Year (first day of the Spring Festival), Gregorian dates.
# fmt: off
SPRING_FESTIVAL: dict[int, date] = {
    d.year: d
    for d in (
        date(2000, 2, 5), date(2001, 1, 24), date(2002, 2, 12), date(2003, 2, 1), date(2004, 1, 22),
        date(2005, 2, 9), date(2006, 1, 29), date(2007, 2, 18), date(2008, 2, 7), date(2009, 1, 26),
        date(2010, 2, 14), date(2011, 2, 3), date(2012, 1, 23), date(2013, 2, 10), date(2014, 1, 31),
        date(2015, 2, 19), date(2016, 2, 8), date(2017, 1, 28), date(2018, 2, 16), date(2019, 2, 5),
        date(2020, 1, 25), date(2021, 2, 12), date(2022, 2, 1), date(2023, 1, 22), date(2024, 2, 10),
        date(2025, 1, 29), date(2026, 2, 17), date(2027, 2, 6), date(2028, 1, 26), date(2029, 2, 13),
        date(2030, 2, 3), date(2031, 1, 23), date(2032, 2, 11), date(2033, 1, 31), date(2034, 2, 19),
        date(2035, 2, 8), date(2036, 1, 28), date(2037, 2, 15), date(2038, 2, 4), date(2039, 1, 24),
        date(2040, 2, 12),
    )
}
# fmt: on

# Monday .. Sunday
_PURCHASE_WEEKDAY = np.array([0.92, 0.93, 0.95, 0.97, 1.05, 1.13, 1.05])
_CALL_WEEKDAY = np.array([1.25, 1.10, 1.00, 1.00, 0.95, 0.60, 0.50])
_STAFFING_WEEKDAY = np.array([1.15, 1.05, 1.00, 1.00, 0.95, 0.55, 0.47])
_SIGNUP_MONTH = np.array([0.90, 0.70, 1.10, 1.00, 1.00, 1.20, 0.90, 0.90, 1.15, 0.90, 1.50, 1.20])


def _parts(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Month (1-12), day of month, weekday (0 = Monday) and days from that year's Spring Festival."""
    d = days.astype("datetime64[D]")
    years = d.astype("datetime64[Y]")
    months = d.astype("datetime64[M]")
    month = (months - years.astype("datetime64[M]")).astype(int) + 1
    dom = (d - months.astype("datetime64[D]")).astype(int) + 1
    weekday = (d.astype(np.int64) - 4) % 7  # 1970-01-01 was a Thursday
    year_num = years.astype(int) + 1970
    festival = np.array(
        [np.datetime64(SPRING_FESTIVAL.get(int(y), date(int(y), 2, 5))) for y in np.unique(year_num)]
    )
    lookup = dict(zip(np.unique(year_num).tolist(), festival, strict=True))
    cny = np.array([lookup[int(y)] for y in year_num], dtype="datetime64[D]") if len(d) else d
    from_cny = (d - cny).astype(int)
    return month, dom, weekday, from_cny


def purchase_multiplier(days: np.ndarray) -> np.ndarray:
    """Relative purchase intensity per day (1.0 = an ordinary Wednesday)."""
    month, dom, weekday, from_cny = _parts(days)
    m = _PURCHASE_WEEKDAY[weekday].copy()
    m *= np.where((month == 11) & (dom <= 10), 1.15, 1.0)  # Singles' Day pre-sales
    m *= np.where((month == 11) & (dom == 11), 3.2, 1.0)  # Singles' Day
    m *= np.where((month == 11) & (dom == 12), 1.4, 1.0)
    m *= np.where((month == 6) & (dom == 18), 1.8, 1.0)  # "618" mid-year festival
    m *= np.where((month == 12) & (dom < 20), 1.15, 1.0)
    m *= np.where((month == 12) & (dom >= 20), 1.35, 1.0)
    m *= np.where((from_cny >= -14) & (from_cny < 0), 1.3, 1.0)  # New Year shopping
    m *= np.where((from_cny >= 0) & (from_cny < 7), 0.45, 1.0)  # holiday week dip
    m *= np.where((from_cny >= 7) & (from_cny < 15), 0.8, 1.0)
    return m


def withdrawal_multiplier(days: np.ndarray) -> np.ndarray:
    """Cash withdrawals: red envelopes before the Spring Festival, fewer on Sundays."""
    _, _, weekday, from_cny = _parts(days)
    m = np.where(weekday == 6, 0.8, 1.0)
    return m * np.where((from_cny >= -14) & (from_cny < 0), 2.5, 1.0)


def call_multiplier(days: np.ndarray) -> np.ndarray:
    """Relative inbound call intensity (disputes after Singles' Day, quiet holiday week)."""
    month, dom, weekday, from_cny = _parts(days)
    m = _CALL_WEEKDAY[weekday].copy()
    m *= np.where((month == 11) & (dom >= 12) & (dom <= 18), 1.3, 1.0)
    m *= np.where((from_cny >= 0) & (from_cny < 7), 0.5, 1.0)
    m *= np.where((from_cny >= 7) & (from_cny < 14), 1.3, 1.0)
    return m


def staffing(days: np.ndarray) -> np.ndarray:
    """Call-center capacity relative to an ordinary weekday."""
    _, _, weekday, from_cny = _parts(days)
    return _STAFFING_WEEKDAY[weekday] * np.where((from_cny >= 0) & (from_cny < 7), 0.5, 1.0)


def complaint_multiplier(days: np.ndarray) -> np.ndarray:
    month, dom, _, _ = _parts(days)
    return np.where((month == 11) & (dom >= 12) & (dom <= 20), 1.5, 1.0)


def signup_weights(days: np.ndarray) -> np.ndarray:
    """Relative number of sign-ups per day (promotion seasons, weekends)."""
    month, _, weekday, from_cny = _parts(days)
    w = _SIGNUP_MONTH[month - 1] * np.where(weekday >= 5, 1.2, 1.0)
    return w * np.where((from_cny >= 0) & (from_cny < 7), 0.4, 1.0)


def singles_day(days: np.ndarray) -> np.ndarray:
    month, dom, _, _ = _parts(days)
    return (month == 11) & (dom == 11)


def weekday(days: np.ndarray) -> np.ndarray:
    return _parts(days)[2]


def day_of_month(days: np.ndarray) -> np.ndarray:
    return _parts(days)[1]


def month_ends(start: date, end: date) -> list[date]:
    """Every last day of a month in [start, end]."""
    days = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    nxt = days + 1
    is_end = nxt.astype("datetime64[M]") != days.astype("datetime64[M]")
    return [d.astype(object) for d in days[is_end]]
