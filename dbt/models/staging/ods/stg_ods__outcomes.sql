-- Retention contact outcomes uploaded by the teams (current version of each contact).
with source as (
    select * from {{ source('ods', 'outcomes') }}
    where _is_current
),

renamed as (
    select
        list_id,
        team,
        agent,
        customer_id,
        contacted_at,
        contacted_at::date as contacted_date,
        outcome,
        outcome in ('retained', 'declined', 'do_not_contact') as is_reached,
        note,
        _load_id as source_load_id
    from source
)

select * from renamed
