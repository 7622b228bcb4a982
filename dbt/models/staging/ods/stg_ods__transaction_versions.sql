-- Every version of every transaction (current or superseded), with the day it was on: lets
-- incremental models find the customer-days a corrected re-delivery touched.
with source as (
    select * from {{ source('ods', 'transactions') }}
),

renamed as (
    select
        txn_id,
        customer_id,
        txn_at::date as txn_date,
        _is_current as is_current_version,
        _load_id as source_load_id
    from source
)

select * from renamed
