-- One row per customer per reference date with a complaint opened by then: counts, open cases,
-- SLA and satisfaction, from each complaint as it stood at the end of that day (the newest version
-- written by then). Versions written later, and complaints opened later, never count.
with reference_dates as (
    select reference_date from {{ ref('int_reference_dates') }}
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
