-- Early-warning scenarios as of the as-of date: one row per customer per triggered scenario.
with states as (
    select * from {{ ref('int_as_of_states') }}
    where status = 'active'
),

as_of as (
    select max(reference_date) as as_of_date from {{ ref('int_as_of_states') }}
),

calls_30d as (
    select
        c.customer_id,
        count(*) as calls,
        count(*) filter (where c.is_cancel_intent) as cancel_calls,
        max(c.call_date) filter (where c.is_cancel_intent) as last_cancel_date
    from {{ ref('fct_calls') }} as c
    cross join as_of as a
    where c.call_date <= a.as_of_date and c.call_date > a.as_of_date - 30
    group by c.customer_id
),

overdue as (
    select customer_id, count(*) as complaints, max(open_hours) as longest_open_hours
    from {{ ref('fct_complaints') }}
    where not is_resolved and is_sla_breached
    group by customer_id
),

closed_recently as (
    select s.customer_id, s.closed_at
    from {{ ref('int_as_of_states') }} as s
    where s.status = 'closed' and s.closed_at::date > s.reference_date - 30
),

alerts as (
    select
        customer_id,
        'high_value_spend_drop' as scenario,
        'high' as severity,
        'spend down ' || round(100 * (1 - spend_30d / (spend_prior_90d_before_30d / 3)))::integer
            || '% in the last 30 days vs the prior 90-day monthly average (' || value_tier || ' customer)' as description
    from states
    where value_tier in ('vip', 'major')
      and spend_prior_90d_before_30d > 0
      and spend_30d < (1 - {{ var('alert_spend_drop_share') }}) * spend_prior_90d_before_30d / 3

    union all
    select
        customer_id,
        'complaint_beyond_sla',
        'high',
        complaints || ' complaint(s) unresolved beyond SLA, the oldest open '
            || round(longest_open_hours / 24)::integer || ' days'
    from overdue

    union all
    select
        customer_id,
        'repeated_calls',
        'medium',
        'called ' || calls || ' times in the last 30 days'
    from calls_30d
    where calls >= {{ var('alert_min_calls_30d') }}

    union all
    select
        customer_id,
        'cancel_intent_call',
        'high',
        'asked to cancel ' || cancel_calls || ' time(s) in the last 30 days, last on ' || last_cancel_date
    from calls_30d
    where cancel_calls > 0

    union all
    select
        customer_id,
        'high_value_inactive',
        'medium',
        value_tier || ' customer with no transaction for ' || days_since_last_txn || ' days'
    from states
    where value_tier in ('vip', 'major') and days_since_last_txn >= {{ var('alert_inactive_days') }}

    union all
    select
        customer_id,
        'winback',
        'low',
        'account closed on ' || closed_at::date || ': win-back candidate'
    from closed_recently
)

select
    a.customer_id || ':' || a.scenario as alert_id,
    a.customer_id,
    a.scenario,
    a.severity,
    a.description,
    d.as_of_date
from alerts as a
cross join as_of as d
-- keep only customers the marts know (calls may come from ids that never arrived as customers)
semi join {{ ref('int_as_of_states') }} as s on s.customer_id = a.customer_id
