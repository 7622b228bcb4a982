with states as (
    select * from {{ ref('int_as_of_states') }}
),

clv as (
    select * from {{ source('ml', 'customer_clv') }}
)

select
    s.customer_id,
    s.reference_date as as_of_date,
    net_revenue::decimal(18, 2) as net_revenue_12m,
    (row_number() over (order by s.net_revenue desc, s.customer_id))::integer as revenue_rank,
    round(coalesce(revenue_share_before, 1.0), 6)::double as revenue_share_before,
    value_tier,
    tenure_days,
    activity_breadth_365d::integer as activity_breadth_12m,
    case when tenure_days >= {{ var('loyalty_min_tenure_days') }}
              and activity_breadth_365d >= {{ var('loyalty_min_breadth') }} then 'high' else 'low' end as loyalty,
    case when value_tier in ('vip', 'major') then 'high' else 'low' end as value_level,
    customer_class,
    lifecycle_stage,
    days_since_last_purchase,
    days_since_last_txn,
    round(c.clv_365d, 2)::decimal(18, 2) as clv_365d,
    round(c.expected_purchases_365d, 4)::double as expected_purchases_365d,
    round(c.p_alive, 4)::double as p_alive
from states as s
left join clv as c on c.customer_id = s.customer_id
