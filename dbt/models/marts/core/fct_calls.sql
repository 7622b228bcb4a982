{{
    config(
        materialized='incremental',
        unique_key='call_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- Incremental like fct_transactions: only calls from ODS loads newer than the last one processed.
with calls as (
    select * from {{ ref('stg_ods__calls') }}
    {% if is_incremental() %}
    where source_load_id > (select coalesce(max(source_load_id), 0) from {{ this }})
    {% endif %}
)

select
    call_id,
    customer_id,
    started_at,
    call_date,
    direction,
    reason,
    queue,
    agent_id,
    wait_seconds,
    talk_seconds,
    outcome,
    transfers,
    is_answered,
    is_abandoned,
    is_resolved,
    is_transferred,
    is_cancel_intent,
    source_load_id
from calls
