-- Every version of every customer record, with the period it was valid (by updated_at).
with source as (
    select * from {{ source('ods', 'customers') }}
),

renamed as (
    select
        customer_id,
        full_name,
        phone,
        email,
        region,
        customer_type,
        signup_date,
        status,
        closed_at,
        updated_at as valid_from,
        lead(updated_at) over (
            partition by customer_id order by updated_at, _load_id, _source_line
        ) as valid_to,
        _is_current as is_current_version,
        _load_id as source_load_id
    from source
)

select * from renamed
