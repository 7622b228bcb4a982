-- The unified customer view: profile (personal data masked), behaviour, service contacts and
-- segments, as of the as-of date.
with states as (
    select * from {{ ref('int_as_of_states') }}
),

profiles as (
    select v.*
    from {{ ref('stg_ods__customers') }} as v
    inner join states as s
        on s.customer_id = v.customer_id
        and v.valid_from < s.reference_date + interval 1 day
        and (v.valid_to is null or v.valid_to >= s.reference_date + interval 1 day)
),

calls as (
    select
        c.customer_id,
        count(*) as calls_total,
        count(*) filter (where c.call_date > s.reference_date - 90) as calls_90d
    from {{ ref('fct_calls') }} as c
    inner join states as s on s.customer_id = c.customer_id
    where c.call_date <= s.reference_date
    group by c.customer_id
),

clv as (
    select customer_id, clv_365d, p_alive from {{ source('ml', 'customer_clv') }}
),

churn as (
    select customer_id, churn_probability, risk_band from {{ source('ml', 'customer_churn_scores') }}
),

complaints as (
    select
        customer_id,
        count(*) as complaints_total,
        count(*) filter (where not is_resolved) as open_complaints
    from {{ ref('fct_complaints') }}
    group by customer_id
)

select
    s.customer_id,
    {{ mask_name('p.full_name') }} as full_name_masked,
    {{ mask_phone('p.phone') }} as phone_masked,
    {{ mask_email('p.email') }} as email_masked,
    s.region,
    s.customer_type,
    s.status,
    s.signup_date,
    s.closed_at,
    s.tenure_days,
    s.first_txn_date,
    s.last_txn_date,
    s.last_purchase_date,
    s.spend_365d::decimal(18, 2) as net_spend_12m,
    s.txn_count_365d::integer as txn_count_12m,
    coalesce(cl.calls_total, 0)::integer as calls_total,
    coalesce(cl.calls_90d, 0)::integer as calls_90d,
    coalesce(cp.complaints_total, 0)::integer as complaints_total,
    coalesce(cp.open_complaints, 0)::integer as open_complaints,
    s.rfm_segment,
    s.rfm_cell,
    s.value_tier,
    s.customer_class,
    s.lifecycle_stage,
    round(v.clv_365d, 2)::decimal(18, 2) as clv_365d,
    round(v.p_alive, 4)::double as p_alive,
    round(ch.churn_probability, 4)::double as churn_probability,
    ch.risk_band,
    s.reference_date as as_of_date
from states as s
left join profiles as p on p.customer_id = s.customer_id
left join calls as cl on cl.customer_id = s.customer_id
left join complaints as cp on cp.customer_id = s.customer_id
left join clv as v on v.customer_id = s.customer_id
left join churn as ch on ch.customer_id = s.customer_id
