-- Current version of every transaction; amounts signed for consumption (refunds negative).
with source as (
    select * from {{ source('ods', 'transactions') }}
    where _is_current
),

renamed as (
    select
        txn_id,
        customer_id,
        txn_at,
        txn_at::date as txn_date,
        txn_type,
        channel,
        amount,
        list_contains({{ var('consumption_txn_types') }}, txn_type) as is_consumption,
        case txn_type
            when 'purchase' then amount
            when 'refund' then -amount
            else 0
        end::decimal(18, 2) as consumption_amount,
        currency,
        product_category,
        _is_orphan as is_orphan,
        _load_id as source_load_id
    from source
)

select * from renamed
