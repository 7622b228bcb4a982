-- One row per customer per relationship year that lies entirely inside the data: year n runs from
-- signup + 365*(n-1) days to signup + 365*n days. Says whether the account was open at the start
-- of the year and whether it stayed open through it, what the customer spent in it, the
-- customer's value tier today (cohort membership) and at the start of the year (whose retention
-- and profit the year measures). Feeds the cohort CLV.
with states as (
    select customer_id, signup_date, value_tier, reference_date as as_of_date
    from {{ ref('int_as_of_states') }}
),

coverage as (
    select min(activity_date) as first_data_date from {{ ref('int_customer_daily_activity') }}
),

-- the value tier in every reference slice (month-ends, observation start, as-of)
slices as (
    select customer_id, reference_date, value_tier
    from {{ ref('int_customer_states_at_dates') }}
),

earliest_slices as (
    select customer_id, arg_min(value_tier, reference_date) as value_tier
    from slices
    group by customer_id
),

-- the account's status history, from every customer version recorded by the as-of date, in the
-- order recorded: a run of consecutive closed (or open) versions is one status change, effective
-- on the day of the closure (closed_at, else the day recorded; the earliest in the run) or of the
-- reopening (the day the first open version after a closure was recorded)
versions as (
    select
        v.customer_id,
        v.valid_from,
        v.source_load_id,
        v.status = 'closed' as is_closed,
        coalesce(v.closed_at::date, v.valid_from::date) as closed_date
    from {{ ref('stg_ods__customers') }} as v
    where v.valid_from < (select max(as_of_date) from states) + interval 1 day
),

runs as (
    select
        *,
        sum(is_change::integer) over (
            partition by customer_id order by valid_from, source_load_id rows between unbounded preceding and current row
        ) as change_number
    from (
        select
            *,
            is_closed <> lag(is_closed, 1, false) over (partition by customer_id order by valid_from, source_load_id)
                as is_change
        from versions
    )
),

status_changes as (
    select
        customer_id,
        change_number,
        bool_or(is_closed) as is_closure,
        case when bool_or(is_closed) then min(closed_date) else min(valid_from::date) end as effective_date
    from runs
    where change_number > 0
    group by customer_id, change_number
),

bounds as (
    select
        s.*,
        -- first and last year n whose window [start, end) lies inside [first_data_date, as_of_date]
        greatest(1, ceil((cv.first_data_date - s.signup_date) / 365.0)::integer + 1) as first_year,
        floor((s.as_of_date + 1 - s.signup_date) / 365.0)::integer as last_year
    from states as s
    cross join coverage as cv
),

years as (
    select
        b.customer_id,
        year(b.signup_date) as signup_year,
        b.value_tier,
        n.year_number,
        (b.signup_date + (365 * (n.year_number - 1))::integer)::date as year_start,
        (b.signup_date + (365 * n.year_number)::integer)::date as year_end
    from bounds as b
    cross join lateral (select unnest(range(b.first_year, b.last_year + 1)) as year_number) as n
    where b.last_year >= b.first_year
),

-- tier at the start of the year: the latest slice on or before the year start; when no slice is
-- that early (month-ends go back history_months only, and a customer appears in a slice only
-- once signed up), the customer's earliest slice stands in for it
year_start_tiers as (
    select
        y.customer_id,
        y.year_number,
        coalesce(s.value_tier, e.value_tier) as year_start_value_tier
    from years as y
    asof left join slices as s
        on s.customer_id = y.customer_id and y.year_start >= s.reference_date
    left join earliest_slices as e on e.customer_id = y.customer_id
),

-- open at the start: the last status change in effect before the year started is not a closure;
-- closed in the year: a closure took effect inside [year start, year end), even if reopened later
year_status as (
    select
        y.customer_id,
        y.year_number,
        coalesce(arg_max(c.is_closure, c.change_number) filter (where c.effective_date < y.year_start), false)
            as is_closed_at_start,
        coalesce(bool_or(c.is_closure) filter (
            where c.effective_date >= y.year_start and c.effective_date < y.year_end
        ), false) as is_closed_in_year
    from years as y
    left join status_changes as c on c.customer_id = y.customer_id
    group by y.customer_id, y.year_number
),

spend as (
    select y.customer_id, y.year_number, sum(d.consumption_amount) as net_revenue
    from years as y
    inner join {{ ref('int_customer_daily_activity') }} as d
        on d.customer_id = y.customer_id
        and d.activity_date >= y.year_start
        and d.activity_date < y.year_end
    group by y.customer_id, y.year_number
)

select
    y.customer_id,
    y.signup_year,
    y.value_tier,
    t.year_start_value_tier,
    y.year_number,
    y.year_start,
    y.year_end,
    not st.is_closed_at_start as is_open_at_start,
    not st.is_closed_at_start and not st.is_closed_in_year as is_open_at_end,
    coalesce(s.net_revenue, 0)::decimal(18, 2) as net_revenue
from years as y
inner join year_start_tiers as t on t.customer_id = y.customer_id and t.year_number = y.year_number
inner join year_status as st on st.customer_id = y.customer_id and st.year_number = y.year_number
left join spend as s on s.customer_id = y.customer_id and s.year_number = y.year_number
