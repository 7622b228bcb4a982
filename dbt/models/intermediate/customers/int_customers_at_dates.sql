-- One row per customer per reference date: the customer record as it stood at the end of that day
-- (the newest version written by then), for customers who had signed up by then.
with reference_dates as (
    select reference_date from {{ ref('int_reference_dates') }}
),

versions as (
    select * from {{ ref('stg_ods__customers') }}
)

select
    r.reference_date,
    v.customer_id,
    v.region,
    v.customer_type,
    v.signup_date,
    case when v.status = 'closed' and coalesce(v.closed_at::date, v.valid_from::date) <= r.reference_date
         then 'closed' else 'active' end as status,
    case when v.status = 'closed' then v.closed_at end as closed_at
from reference_dates as r
inner join versions as v
    on v.valid_from < r.reference_date + interval 1 day
    and (v.valid_to is null or v.valid_to >= r.reference_date + interval 1 day)
where v.signup_date <= r.reference_date
