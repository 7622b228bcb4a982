-- One row per customer per relationship year that lies entirely inside the data: year n runs from
-- signup + 365*(n-1) days to signup + 365*n days. Says whether the account was open at the start
-- and at the end of the year and what the customer spent in it. Feeds the cohort CLV.
with states as (
    select customer_id, signup_date, value_tier, reference_date as as_of_date
    from {{ ref('int_as_of_states') }}
),

coverage as (
    select min(activity_date) as first_data_date from {{ ref('int_customer_daily_activity') }}
),

closures as (
    select customer_id, min(coalesce(closed_at::date, valid_from::date)) as closed_date
    from {{ ref('stg_ods__customers') }}
    where status = 'closed'
    group by customer_id
),

bounds as (
    select
        s.*,
        c.closed_date,
        -- first and last year n whose window [start, end) lies inside [first_data_date, as_of_date]
        greatest(1, ceil((cv.first_data_date - s.signup_date) / 365.0)::integer + 1) as first_year,
        floor((s.as_of_date + 1 - s.signup_date) / 365.0)::integer as last_year
    from states as s
    cross join coverage as cv
    left join closures as c on c.customer_id = s.customer_id
),

years as (
    select
        b.customer_id,
        year(b.signup_date) as signup_year,
        b.value_tier,
        n.year_number,
        (b.signup_date + (365 * (n.year_number - 1))::integer)::date as year_start,
        (b.signup_date + (365 * n.year_number)::integer)::date as year_end,
        b.closed_date
    from bounds as b
    cross join lateral (select unnest(range(b.first_year, b.last_year + 1)) as year_number) as n
    where b.last_year >= b.first_year
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
    y.year_number,
    y.year_start,
    y.year_end,
    y.closed_date is null or y.closed_date >= y.year_start as is_open_at_start,
    y.closed_date is null or y.closed_date >= y.year_end as is_open_at_end,
    coalesce(s.net_revenue, 0)::decimal(18, 2) as net_revenue
from years as y
left join spend as s on s.customer_id = y.customer_id and s.year_number = y.year_number
