-- Current version of every call-center contact, with outcome flags.
with source as (
    select * from {{ source('ods', 'calls') }}
    where _is_current
),

renamed as (
    select
        call_id,
        customer_id,
        started_at,
        started_at::date as call_date,
        direction,
        reason,
        queue,
        agent_id,
        wait_seconds,
        talk_seconds,
        outcome,
        transfers,
        outcome <> 'abandoned' as is_answered,
        outcome = 'abandoned' as is_abandoned,
        outcome = 'resolved' as is_resolved,
        transfers > 0 or outcome = 'transferred' as is_transferred,
        reason = 'cancel_request' as is_cancel_intent,
        _is_orphan as is_orphan,
        _load_id as source_load_id
    from source
)

select * from renamed
