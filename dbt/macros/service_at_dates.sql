{#-
  The service features of churn_features, per customer per reference date. `reference_dates` is a
  relation (or CTE name) with one column `reference_date`: churn_features passes the snapshots it
  computes in this run, so an incremental night aggregates calls and complaints for those dates
  only. Both look backwards from each date only: data dated after it never changes its row.
-#}

{#-
  One row per customer per reference date with an inbound call in the 90 days up to it: call
  counts from calls started by the end of that day (point in time). Outbound calls (our own sales
  and follow-up calls) and calls from unidentified callers do not count.
-#}
{% macro customer_calls_at_dates(reference_dates) -%}
    with reference_dates as (
        select reference_date from {{ reference_dates }}
    ),

    calls as (
        select
            customer_id,
            call_date,
            transfers,
            is_abandoned,
            is_cancel_intent,
            -- repeat contact: the customer had already called within repeat_contact_days before this call
            -- (looks backwards only, so later calls never change an earlier date's counts)
            coalesce(
                lag(started_at) over (partition by customer_id order by started_at, call_id)
                    >= started_at - to_days({{ var('repeat_contact_days') }}),
                false
            ) as is_repeat_contact
        from {{ ref('stg_ods__calls') }}
        where customer_id is not null
          and direction = 'inbound'
          -- the calls in the windows, and the ones before them that can make those repeat contacts
          and call_date > (select min(reference_date) from reference_dates) - 90 - {{ var('repeat_contact_days') }} - 1
    ),

    windowed as (
        select
            r.reference_date,
            c.customer_id,
            count(*) filter (where c.call_date > r.reference_date - 30) as calls_30d,
            count(*) as calls_90d,
            count(*) filter (where c.is_cancel_intent) as cancel_intent_calls_90d,
            coalesce(sum(c.transfers), 0) as transfers_90d,
            count(*) filter (where c.is_abandoned) as abandoned_calls_90d,
            count(*) filter (where c.is_repeat_contact and c.call_date > r.reference_date - 30) as repeat_contacts_30d
        from reference_dates as r
        inner join calls as c
            on c.call_date <= r.reference_date
            and c.call_date > r.reference_date - 90
        group by r.reference_date, c.customer_id
    )

    select * from windowed
{%- endmacro %}

{#-
  One row per customer per reference date with a complaint opened by then: counts, open cases,
  SLA and satisfaction, from each complaint as it stood at the end of that day (the newest version
  written by then). Versions written later, and complaints opened later, never count.
-#}
{% macro customer_complaints_at_dates(reference_dates) -%}
    with reference_dates as (
        select reference_date from {{ reference_dates }}
    ),

    versions as (
        select * from {{ ref('stg_ods__complaints') }}
        where customer_id is not null
    ),

    states_at_dates as (
        select
            r.reference_date,
            v.complaint_id,
            v.customer_id,
            v.opened_at,
            v.severity,
            v.status,
            v.resolved_at,
            v.satisfaction
        from reference_dates as r
        inner join versions as v
            on v.valid_from < r.reference_date + interval 1 day
            and v.opened_at < r.reference_date + interval 1 day
        qualify row_number() over (
            partition by r.reference_date, v.complaint_id order by v.valid_from desc, v.source_load_id desc
        ) = 1
    ),

    measured as (
        select
            reference_date,
            customer_id,
            opened_at,
            opened_at::date as opened_date,
            status = 'resolved' as is_resolved,
            resolved_at,
            satisfaction,
            {{ sla_hours('severity') }} as sla_hours,
            case when status = 'resolved'
                 then date_diff('second', opened_at, resolved_at) / 3600.0 end as resolution_hours,
            case when status <> 'resolved'
                 then date_diff('second', opened_at, reference_date + interval 1 day) / 3600.0 end as open_hours
        from states_at_dates
    ),

    aggregated as (
        select
            reference_date,
            customer_id,
            count(*) filter (where opened_date > reference_date - 90) as complaints_90d,
            count(*) filter (where opened_date > reference_date - 365) as complaints_365d,
            count(*) filter (where not is_resolved) as open_complaints,
            count(*) filter (where not is_resolved and open_hours > sla_hours) as open_complaints_beyond_sla,
            max(reference_date - opened_date) filter (where not is_resolved) as longest_open_complaint_days,
            count(*) filter (where is_resolved and opened_date > reference_date - 365) as resolved_365d,
            count(*) filter (
                where is_resolved and opened_date > reference_date - 365 and resolution_hours <= sla_hours
            ) as resolved_within_sla_365d,
            arg_max(satisfaction, resolved_at) filter (where is_resolved and satisfaction is not null) as last_satisfaction
        from measured
        group by reference_date, customer_id
    )

    select
        reference_date,
        customer_id,
        complaints_90d,
        complaints_365d,
        open_complaints,
        open_complaints_beyond_sla,
        longest_open_complaint_days,
        resolved_within_sla_365d / nullif(resolved_365d, 0) as share_resolved_within_sla,
        last_satisfaction
    from aggregated
{%- endmacro %}
