-- The state of every complaint as of the as-of date: the newest version written by then.
with as_of as (
    select {{ as_of_date() }} as as_of_date
),

versions as (
    select c.*, a.as_of_date
    from {{ ref('stg_ods__complaints') }} as c
    cross join as_of as a
    where c.valid_from < a.as_of_date + interval 1 day
      and c.opened_at < a.as_of_date + interval 1 day
),

latest as (
    select *
    from versions
    qualify row_number() over (partition by complaint_id order by valid_from desc, source_load_id desc) = 1
),

measured as (
    select
        complaint_id,
        customer_id,
        opened_at,
        opened_at::date as opened_date,
        channel,
        category,
        severity,
        status,
        status = 'resolved' as is_resolved,
        resolved_at,
        case when status = 'resolved'
             then round(date_diff('second', opened_at, resolved_at) / 3600.0, 2) end as resolution_hours,
        case when status <> 'resolved'
             then round(date_diff('second', opened_at, as_of_date + interval 1 day) / 3600.0, 2) end as open_hours,
        {{ sla_hours('severity') }} as sla_hours,
        compensation_amount,
        satisfaction,
        valid_from as last_updated_at,
        as_of_date
    from latest
)

select
    complaint_id,
    customer_id,
    opened_at,
    opened_date,
    channel,
    category,
    severity,
    status,
    is_resolved,
    resolved_at,
    resolution_hours::decimal(12, 2) as resolution_hours,
    open_hours::decimal(12, 2) as open_hours,
    sla_hours::integer as sla_hours,
    coalesce(resolution_hours, open_hours) > sla_hours as is_sla_breached,
    compensation_amount,
    satisfaction,
    last_updated_at,
    as_of_date
from measured
