-- How customers moved between value tiers and between RFM segments from one snapshot date to the
-- next (including those who stayed). Snapshot dates are the as-of dates the nightly run recorded
-- a change on; '(new)' marks customers who were not in the previous snapshot.
with history as (
    select customer_id, value_tier, rfm_segment, dbt_valid_from::date as valid_from, dbt_valid_to::date as valid_to
    from {{ ref('customer_segments_snapshot') }}
),

snapshot_dates as (
    select valid_from as snapshot_date, lag(valid_from) over (order by valid_from) as previous_date
    from (select distinct valid_from from history)
),

state_at as (   -- every customer's state at every snapshot date
    select d.snapshot_date, d.previous_date, h.customer_id, h.value_tier, h.rfm_segment
    from snapshot_dates as d
    inner join history as h
        on h.valid_from <= d.snapshot_date and (h.valid_to is null or h.valid_to > d.snapshot_date)
),

pairs as (
    select
        cur.snapshot_date,
        cur.previous_date,
        cur.customer_id,
        coalesce(prev.value_tier, '(new)') as from_value_tier,
        cur.value_tier as to_value_tier,
        coalesce(prev.rfm_segment, '(new)') as from_rfm_segment,
        cur.rfm_segment as to_rfm_segment
    from state_at as cur
    left join state_at as prev
        on prev.snapshot_date = cur.previous_date and prev.customer_id = cur.customer_id
    where cur.previous_date is not null
),

counted as (
    select 'value_tier' as dimension, previous_date, snapshot_date, from_value_tier as from_segment,
           to_value_tier as to_segment, count(*) as customers
    from pairs group by all
    union all
    select 'rfm_segment', previous_date, snapshot_date, from_rfm_segment, to_rfm_segment, count(*)
    from pairs group by all
)

select
    dimension || ':' || previous_date || ':' || snapshot_date || ':' || from_segment || '>' || to_segment as migration_id,
    dimension,
    previous_date as from_date,
    snapshot_date as to_date,
    from_segment,
    to_segment,
    from_segment <> to_segment as is_change,
    customers::integer as customers
from counted
