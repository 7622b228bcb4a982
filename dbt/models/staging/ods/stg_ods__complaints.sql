-- Every version of every complaint case, with the period it was valid (by updated_at).
with source as (
    select * from {{ source('ods', 'complaints') }}
),

renamed as (
    select
        complaint_id,
        customer_id,
        opened_at,
        channel,
        category,
        severity,
        status,
        resolved_at,
        compensation_amount,
        satisfaction,
        updated_at as valid_from,
        lead(updated_at) over (
            partition by complaint_id order by updated_at, _load_id, _source_line
        ) as valid_to,
        _is_current as is_current_version,
        _is_orphan as is_orphan,
        _load_id as source_load_id
    from source
)

select * from renamed
