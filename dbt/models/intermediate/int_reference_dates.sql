{{ config(materialized='table') }}

-- The dates customer states are computed for: the as-of date, the start of the churn observation
-- window (as-of minus churn_observation_days) and the last history_months month-ends before the
-- as-of month (for history and model training). One row per date.
with bounds as (
    select
        {{ as_of_date() }} as as_of_date,
        (select min(txn_date) from {{ ref('stg_ods__transactions') }}) as first_data_date
),

candidates as (
    select as_of_date as reference_date, 'as_of' as purpose from bounds
    union all
    select (as_of_date - {{ var('churn_observation_days') }})::date, 'observation_start' from bounds
    union all
    select (date_trunc('month', as_of_date) - to_months(i::integer) - interval 1 day)::date, 'month_end'
    from bounds, range(0, {{ var('history_months') }}) as t(i)
)

select
    c.reference_date,
    bool_or(c.purpose = 'as_of') as is_as_of,
    bool_or(c.purpose = 'observation_start') as is_observation_start,
    bool_or(c.purpose = 'month_end') as is_month_end
from candidates as c
cross join bounds as b
where c.reference_date >= coalesce(b.first_data_date, c.reference_date) or c.purpose = 'as_of'
group by c.reference_date
