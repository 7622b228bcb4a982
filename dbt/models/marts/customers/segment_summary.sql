-- The managers' report: per RFM segment and per value tier, customers, revenue share, average
-- cohort CLV and the churn rate observed over the last churn_observation_days among the customers
-- who were in that segment at the start of that window. Churn is the churn label's definition
-- (churn_features): the account closed in the window, or, when churn_label_includes_inactivity,
-- no consumption transaction (purchase or refund) in it.
with states as (
    select * from {{ ref('int_as_of_states') }}
),

as_of as (
    select reference_date as as_of_date from {{ ref('int_reference_dates') }} where is_as_of
),

earlier as (   -- segments at the start of the observation window
    select s.*
    from {{ ref('int_customer_states_at_dates') }} as s
    inner join {{ ref('int_reference_dates') }} as r
        on r.reference_date = s.reference_date and r.is_observation_start
    where s.status = 'active'
),

closures as (   -- closures recorded by the as-of date (one row per closed version)
    {{ closures_recorded_by('(select as_of_date from as_of)') }}
),

closed_in_window as (   -- closed inside (window start, as-of date] (rule: macros/churn.sql)
    select distinct e.customer_id
    from earlier as e
    cross join as_of as a
    inner join closures as c
        on c.customer_id = e.customer_id
        and {{ closure_counts_as_churn('c', 'e.reference_date', 'a.as_of_date') }}
),

consumed_in_window as (   -- made a purchase or refund inside (window start, as-of date]
    select distinct e.customer_id
    from earlier as e
    cross join as_of as a
    inner join {{ ref('int_customer_daily_activity') }} as d
        on d.customer_id = e.customer_id
        and d.consumption_count > 0
        and d.activity_date > e.reference_date
        and d.activity_date <= a.as_of_date
),

outcome as (   -- churned by the as-of date, as the churn label defines it
    select
        e.customer_id,
        c.customer_id is not null
        {%- if var('churn_label_includes_inactivity') %} or u.customer_id is null{% endif %} as churned
    from earlier as e
    left join closed_in_window as c on c.customer_id = e.customer_id
    left join consumed_in_window as u on u.customer_id = e.customer_id
),

cohort_clv as (
    select signup_year, value_tier, clv_per_customer from {{ ref('customer_ltv_cohort') }}
),

members as (
    select
        s.customer_id,
        s.rfm_segment,
        s.value_tier,
        s.net_revenue,
        c.clv_per_customer,
        coalesce(p.clv_365d, 0) as predicted_clv
    from states as s
    left join cohort_clv as c on c.signup_year = year(s.signup_date) and c.value_tier = s.value_tier
    left join {{ source('ml', 'customer_clv') }} as p on p.customer_id = s.customer_id
),

current_by as (
    select 'rfm_segment' as dimension, rfm_segment as segment, * from members
    union all
    select 'value_tier', value_tier, * from members
),

observed_by as (
    select 'rfm_segment' as dimension, e.rfm_segment as segment, o.churned
    from earlier as e inner join outcome as o using (customer_id)
    union all
    select 'value_tier', e.value_tier, o.churned
    from earlier as e inner join outcome as o using (customer_id)
),

current_agg as (
    select
        dimension,
        segment,
        count(*) as customers,
        sum(greatest(net_revenue, 0)) as net_revenue_12m,
        avg(clv_per_customer) as avg_cohort_clv,
        avg(predicted_clv) as avg_predicted_clv_365d
    from current_by
    group by all
),

observed_agg as (
    select dimension, segment, count(*) as observed_customers, avg(churned::integer) as churn_rate
    from observed_by
    group by all
)

select
    dimension || ':' || segment as summary_id,
    dimension,
    segment,
    (select max(reference_date) from states) as as_of_date,
    coalesce(c.customers, 0)::integer as customers,
    round(coalesce(c.customers, 0) / sum(c.customers) over (partition by dimension), 6)::double as customer_share,
    coalesce(c.net_revenue_12m, 0)::decimal(18, 2) as net_revenue_12m,
    round(coalesce(c.net_revenue_12m / nullif(sum(c.net_revenue_12m) over (partition by dimension), 0), 0), 6)::double
        as revenue_share,
    round(c.avg_cohort_clv, 2)::decimal(18, 2) as avg_cohort_clv,
    round(c.avg_predicted_clv_365d, 2)::decimal(18, 2) as avg_predicted_clv_365d,
    coalesce(o.observed_customers, 0)::integer as churn_observed_customers,
    round(o.churn_rate, 6)::double as churn_rate_observed
from current_agg as c
full outer join observed_agg as o using (dimension, segment)
