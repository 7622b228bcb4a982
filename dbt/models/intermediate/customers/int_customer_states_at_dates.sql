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

customers as (
    select c.* from {{ ref('int_customers_at_dates') }} as c
    semi join computed_dates as d on d.reference_date = c.reference_date
),

activity as (
    select a.* from {{ ref('int_customer_activity_at_dates') }} as a
    semi join computed_dates as d on d.reference_date = a.reference_date
),

daily as (
    select customer_id, activity_date, purchase_count from {{ ref('int_customer_daily_activity') }}
),

purchase_days as (
    select customer_id, activity_date from daily where purchase_count > 0
),

first_days as (
    select customer_id, min(activity_date) as first_txn_date from daily group by customer_id
),

joined as (
    select
        c.*,
        a.* exclude (reference_date, customer_id, built_through_load_id),
        lp.activity_date as last_purchase_date,
        lt.activity_date as last_txn_date,
        case when f.first_txn_date <= c.reference_date then f.first_txn_date end as first_txn_date
    from customers as c
    left join activity as a
        on a.reference_date = c.reference_date and a.customer_id = c.customer_id
    left join first_days as f
        on f.customer_id = c.customer_id
    asof left join purchase_days as lp
        on lp.customer_id = c.customer_id and c.reference_date >= lp.activity_date
    asof left join daily as lt
        on lt.customer_id = c.customer_id and c.reference_date >= lt.activity_date
),

-- RFM: only customers with a purchase in the window are scored; quintiles per reference date
rfm_scored as (
    select
        reference_date,
        customer_id,
        reference_date - rfm_last_purchase_date as recency_days,
        {{ quintile_score('reference_date - rfm_last_purchase_date', 'reference_date', descending=true) }} as recency_score,
        {{ quintile_score('rfm_frequency', 'reference_date') }} as frequency_score,
        {{ quintile_score('rfm_monetary', 'reference_date') }} as monetary_score
    from joined
    where rfm_frequency > 0
),

-- Value tiers: rank by net revenue; a customer's tier is set by the revenue share ranked before them
valued as (
    select
        reference_date,
        customer_id,
        coalesce(
            sum(net_revenue) over (
                partition by reference_date order by net_revenue desc, customer_id
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) / nullif(sum(net_revenue) filter (where net_revenue > 0) over (partition by reference_date), 0) as revenue_share_before
    from joined
    where net_revenue > 0
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
        r.recency_days as rfm_recency_days,
        r.recency_score,
        r.frequency_score,
        r.monetary_score,
        v.revenue_share_before
    from joined as j
    left join rfm_scored as r on r.reference_date = j.reference_date and r.customer_id = j.customer_id
    left join valued as v on v.reference_date = j.reference_date and v.customer_id = j.customer_id
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
