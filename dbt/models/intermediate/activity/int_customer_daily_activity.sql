{{
    config(
        materialized='incremental',
        unique_key=['customer_id', 'activity_date'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{% if is_incremental() %}delete from {{ this }} where txn_count = 0{% endif %}",
    )
}}

-- depends_on: {{ ref('stg_ods__transaction_versions') }}
-- One row per customer per day with transactions, from fct_transactions (so its tests, the
-- base-currency check among them, stop everything built from here on). A nightly run recomputes
-- only the customer-days touched by ODS loads newer than the last one processed
-- (last_source_load_id), including the days an older version of a corrected transaction was on.
-- A touched customer-day left without any transaction (the transaction moved to another day or
-- customer) gets a row with txn_count 0, which replaces the old row in the delete+insert and is
-- then deleted by the post-hook: an incremental run always equals a full refresh.
{% set categories = var('product_categories') %}
{% set services = var('txn_types') | reject('in', var('consumption_txn_types')) | list %}
{% if (categories | length) + (services | length) > 63 %}
    {{ exceptions.raise_compiler_error(
        "product_categories and the non-consumption txn_types have " ~ ((categories | length) + (services | length))
        ~ " values together; activity breadth keeps one bit per value in a BIGINT, so at most 63 fit"
    ) }}
{% endif %}

with transactions as (
    select * from {{ ref('fct_transactions') }}
),

{% if is_incremental() %}
touched as (
    select distinct v.customer_id, v.txn_date
    from {{ ref('stg_ods__transaction_versions') }} as v
    where v.txn_id in (
        select txn_id from {{ ref('stg_ods__transaction_versions') }}
        where source_load_id > (select coalesce(max(last_source_load_id), 0) from {{ this }})
    )
),

scoped as (
    select t.*
    from transactions as t
    semi join touched as k on k.customer_id = t.customer_id and k.txn_date = t.txn_date
),
{% else %}
scoped as (
    select * from transactions
),
{% endif %}

daily as (
    select
        customer_id,
        txn_date as activity_date,
        count(*) as txn_count,
        count(*) filter (where txn_type = 'purchase') as purchase_count,
        coalesce(sum(amount) filter (where txn_type = 'purchase'), 0) as purchase_amount,
        count(*) filter (where txn_type = 'refund') as refund_count,
        coalesce(sum(amount) filter (where txn_type = 'refund'), 0) as refund_amount,
        count(*) filter (where is_consumption) as consumption_count,
        sum(consumption_amount) as consumption_amount,
        count(*) filter (where not is_consumption) as non_consumption_count,
        count(*) filter (where list_contains({{ var('digital_channels') }}, channel)) as digital_count,
        count(*) filter (where channel = 'branch') as branch_count,
        -- one bit per product category (var product_categories), then one per non-consumption txn type
        coalesce(bit_or(
            case when is_consumption and product_category is not null
                 then (1::bigint << (list_position({{ categories }}, product_category) - 1)) end
        ), 0) as product_bits,
        coalesce(bit_or(
            case when not is_consumption
                 then (1::bigint << (list_position({{ services }}, txn_type) + {{ categories | length }} - 1)) end
        ), 0) as service_bits,
        max(source_load_id) as last_source_load_id
    from scoped
    group by customer_id, txn_date
)

select * from daily
{% if is_incremental() %}
union all by name
select k.customer_id, k.txn_date as activity_date, 0::bigint as txn_count
from touched as k
anti join daily as d on d.customer_id = k.customer_id and d.activity_date = k.txn_date
{% endif %}
