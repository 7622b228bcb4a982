-- Every version of every call (current or superseded), with the day it was on: lets incremental
-- models find the days a corrected re-delivery of a call touched.
with source as (
    select * from {{ source('ods', 'calls') }}
),

renamed as (
    select
        call_id,
        customer_id,
        started_at::date as call_date,
        _is_current as is_current_version,
        _load_id as source_load_id
    from source
)

select * from renamed
