with states as (
    select * from {{ ref('int_as_of_states') }}
)

select
    customer_id,
    reference_date as as_of_date,
    {{ var('rfm_window_days') }}::integer as window_days,
    case when rfm_frequency > 0 then last_purchase_date end as last_purchase_date,
    rfm_recency_days::integer as recency_days,
    rfm_frequency::integer as frequency,
    rfm_monetary::decimal(18, 2) as monetary,
    recency_score::integer as recency_score,
    frequency_score::integer as frequency_score,
    monetary_score::integer as monetary_score,
    rfm_cell,
    rfm_segment
from states
