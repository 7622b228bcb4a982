{{
    config(
        materialized='incremental',
        unique_key='reference_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ drop_stale_reference_dates() }}",
    )
}}

-- depends_on: {{ ref('stg_ods__transaction_versions') }}
-- depends_on: {{ ref('stg_ods__customers') }}
-- One row per customer per reference date: behaviour, RFM scores and segment, value tier,
-- loyalty x value class and lifecycle stage, all computed from data up to that date. The marts
-- show the as-of date; segment_summary and the churn features use the earlier dates.
-- Incremental by reference date (macros/reference_dates_to_compute.sql); built_through_load_id is
-- the newest ODS load the run that computed the slice had seen.
with computed_dates as (
    {{ reference_dates_to_compute(include_customers=true) }}
),

watermark as (
    select {{ ods_load_watermark() }} as built_through_load_id
),

-- customers and activity are read by several CTEs below, each needing only some columns:
-- "not materialized" lets each read just those instead of DuckDB copying every column once
customers as not materialized (
    select c.* from {{ ref('int_customers_at_dates') }} as c
    semi join computed_dates as d on d.reference_date = c.reference_date
),

activity as not materialized (
    select a.* from {{ ref('int_customer_activity_at_dates') }} as a
    semi join computed_dates as d on d.reference_date = a.reference_date
),

-- RFM scores and value tiers per reference date, among the customers present at that date (only
-- they have a state). RFM: only customers with a purchase in the window are scored, quintiles per
-- reference date. Value tiers: rank by net revenue; a customer's tier is set by the revenue share
-- ranked before them.
present_activity as (
    select
        a.reference_date,
        a.customer_id,
        a.rfm_frequency > 0 as is_rfm_scored,
        case when a.rfm_frequency > 0 then a.reference_date - a.rfm_last_purchase_date end as recency_days,
        case when a.rfm_frequency > 0 then a.rfm_frequency end as rfm_frequency,
        a.rfm_monetary,
        a.net_revenue
    from activity as a
    semi join customers as c on c.reference_date = a.reference_date and c.customer_id = a.customer_id
    where a.rfm_frequency > 0 or a.net_revenue > 0
),

rfm_totals as (
    select
        reference_date,
        count(*) filter (where is_rfm_scored) as scored_count,
        sum(net_revenue) filter (where net_revenue > 0) as positive_net_revenue
    from present_activity
    group by reference_date
),

-- Recency (at most a window's worth of days) and frequency take few distinct values: a value's rank
-- is 1 + the customers with a value ranked strictly before it, counted per value, not per row.
recency_ranks as (
    select
        reference_date,
        recency_days,
        1 + coalesce(sum(customers) over (
            partition by reference_date order by recency_days desc rows between unbounded preceding and 1 preceding
        ), 0)::bigint as recency_rank
    from (
        select reference_date, recency_days, count(*) as customers
        from present_activity where is_rfm_scored group by reference_date, recency_days
    )
),

frequency_ranks as (
    select
        reference_date,
        rfm_frequency,
        1 + coalesce(sum(customers) over (
            partition by reference_date order by rfm_frequency asc rows between unbounded preceding and 1 preceding
        ), 0)::bigint as frequency_rank
    from (
        select reference_date, rfm_frequency, count(*) as customers
        from present_activity where is_rfm_scored group by reference_date, rfm_frequency
    )
),

scored as (
    select
        p.reference_date,
        p.customer_id,
        p.recency_days,
        case when p.is_rfm_scored then {{ quintile_of_rank('rr.recency_rank', 't.scored_count') }} end as recency_score,
        case when p.is_rfm_scored then {{ quintile_of_rank('fr.frequency_rank', 't.scored_count') }} end as frequency_score,
        case when p.is_rfm_scored then {{ quintile_of_rank(
            'rank() over (partition by p.reference_date, p.is_rfm_scored order by p.rfm_monetary asc)', 't.scored_count'
        ) }} end as monetary_score,
        case when p.net_revenue > 0 then
            coalesce(
                sum(p.net_revenue) over (
                    partition by p.reference_date, p.net_revenue > 0 order by p.net_revenue desc, p.customer_id
                    rows between unbounded preceding and 1 preceding
                ),
                0
            ) / nullif(t.positive_net_revenue, 0)
        end as revenue_share_before
    from present_activity as p
    inner join rfm_totals as t on t.reference_date = p.reference_date
    left join recency_ranks as rr on rr.reference_date = p.reference_date and rr.recency_days = p.recency_days
    left join frequency_ranks as fr on fr.reference_date = p.reference_date and fr.rfm_frequency = p.rfm_frequency
),

-- The customer's first transaction, last transaction and last purchase on or before each date.
-- Each day's rows count towards the first computed date on or after it (its bucket); a running
-- min/max over the buckets, carried to every date the customer is present at, gives the dates.
daily as (
    select customer_id, activity_date, purchase_count from {{ ref('int_customer_daily_activity') }}
),

day_buckets as (
    select a.activity_date, min(d.reference_date) as reference_date
    from (select distinct activity_date from daily) as a
    inner join computed_dates as d on d.reference_date >= a.activity_date
    group by a.activity_date
),

bucketed as (
    select
        d.customer_id,
        b.reference_date,
        min(d.activity_date) as first_txn_date,
        max(d.activity_date) as last_txn_date,
        max(d.activity_date) filter (where d.purchase_count > 0) as last_purchase_date
    from daily as d
    inner join day_buckets as b on b.activity_date = d.activity_date
    group by d.customer_id, b.reference_date
),

customers_with_dates as (
    select
        * exclude (is_present, first_txn_date, last_txn_date, last_purchase_date),
        min(first_txn_date) over running as first_txn_date,
        max(last_txn_date) over running as last_txn_date,
        max(last_purchase_date) over running as last_purchase_date
    from (
        select customer_id, reference_date, first_txn_date, last_txn_date, last_purchase_date, false as is_present
        from bucketed
        union all by name
        select *, true as is_present
        from customers
    )
    window running as (
        partition by customer_id order by reference_date, is_present rows between unbounded preceding and current row
    )
    qualify is_present
),

joined as (
    select
        c.*,
        a.* exclude (reference_date, customer_id, built_through_load_id),
        sc.* exclude (reference_date, customer_id)
    from customers_with_dates as c
    left join activity as a
        on a.reference_date = c.reference_date and a.customer_id = c.customer_id
    left join scored as sc
        on sc.reference_date = c.reference_date and sc.customer_id = c.customer_id
),

states as (
    select
        j.reference_date,
        j.customer_id,
        j.region,
        j.customer_type,
        j.signup_date,
        j.status,
        j.closed_at,
        (j.reference_date - j.signup_date)::integer as tenure_days,
        j.first_txn_date,
        j.last_txn_date,
        j.last_purchase_date,
        (j.reference_date - j.last_purchase_date)::integer as days_since_last_purchase,
        (j.reference_date - j.last_txn_date)::integer as days_since_last_txn,
        coalesce(j.spend_30d, 0) as spend_30d,
        coalesce(j.spend_90d, 0) as spend_90d,
        coalesce(j.spend_365d, 0) as spend_365d,
        coalesce(j.spend_prior_90d_before_30d, 0) as spend_prior_90d_before_30d,
        coalesce(j.spend_prior_90d, 0) as spend_prior_90d,
        coalesce(j.net_revenue, 0) as net_revenue,
        coalesce(j.consumption_txn_count_90d, 0) as consumption_txn_count_90d,
        coalesce(j.non_consumption_txn_count_90d, 0) as non_consumption_txn_count_90d,
        coalesce(j.txn_count_90d, 0) as txn_count_90d,
        coalesce(j.txn_count_365d, 0) as txn_count_365d,
        coalesce(j.digital_count_90d, 0) as digital_count_90d,
        coalesce(j.branch_count_90d, 0) as branch_count_90d,
        coalesce(j.activity_breadth_365d, 0) as activity_breadth_365d,
        coalesce(j.rfm_frequency, 0) as rfm_frequency,
        coalesce(j.rfm_monetary, 0) as rfm_monetary,
        j.recency_days as rfm_recency_days,
        j.recency_score,
        j.frequency_score,
        j.monetary_score,
        j.revenue_share_before
    from joined as j
)

select
    s.*,
    case when recency_score is not null
         then recency_score::varchar || frequency_score::varchar || monetary_score::varchar end as rfm_cell,
    {{ rfm_segment('recency_score', 'frequency_score') }} as rfm_segment,
    case
        when revenue_share_before < {{ var('value_tier_vip_share') }} then 'vip'
        when revenue_share_before < {{ var('value_tier_major_share') }} then 'major'
        else 'ordinary'
    end as value_tier,
    case
        when status = 'closed' then 'churned'
        when tenure_days < {{ var('lifecycle_new_days') }} then 'new'
        when days_since_last_purchase <= {{ var('lifecycle_at_risk_days') }} then 'active'
        when days_since_last_purchase <= {{ var('lifecycle_dormant_days') }} then 'at_risk'
        else 'dormant'
    end as lifecycle_stage,
    case
        when status = 'closed' then 'former'
        when days_since_last_txn is null or days_since_last_txn > {{ var('inactive_days') }} then 'inactive'
        else
            case when tenure_days >= {{ var('loyalty_min_tenure_days') }}
                      and activity_breadth_365d >= {{ var('loyalty_min_breadth') }}
                 then 'high_loyalty' else 'low_loyalty' end
            || '_'
            || case when revenue_share_before < {{ var('value_tier_major_share') }}
                    then 'high_value' else 'low_value' end
    end as customer_class,
    m.built_through_load_id
from states as s
cross join watermark as m
