{{
    config(
        materialized='incremental',
        unique_key='snapshot_date',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook=[
            "{{ drop_stale_reference_dates('snapshot_date', 'is_month_end or is_as_of') }}",
            "{% if is_incremental() %}delete from {{ this }} where customer_id is null{% endif %}",
        ],
    )
}}

-- depends_on: {{ ref('stg_ods__transaction_versions') }}
-- depends_on: {{ ref('stg_ods__customers') }}
-- depends_on: {{ ref('stg_ods__call_versions') }}
-- depends_on: {{ ref('stg_ods__complaints') }}
-- The churn model's input: one row per active customer per snapshot date (every month-end
-- reference date, for training, plus the as-of date, for scoring). Features come only from data
-- up to the end of the snapshot day; the label looks at the churn_label_window_days after it.
-- Incremental by snapshot date (macros/churn_snapshots_to_compute.sql): a night computes the
-- scoring snapshot and the slices whose features or label it can have changed;
-- built_through_load_id is the newest ODS load the run that computed the slice had seen.
{%- set window_days = var('churn_label_window_days') | int %}
{%- set includes_inactivity = var('churn_label_includes_inactivity') %}
{%- set min_tenure_days = var('churn_min_tenure_days') | int %}
{%- set min_value = var('churn_min_value', none) %}
{%- set label_text -%}
    churned = 1 when the account is closed{{ ' or no consumption transaction (purchase or refund) is made' if includes_inactivity else '' }}
    within the {{ window_days }} days after the snapshot date, else 0; eligible = active at the snapshot date
    with tenure >= {{ min_tenure_days }} days{{ (' and net revenue in the ' ~ var('value_window_days') ~ '-day value window >= ' ~ min_value) if min_value is not none else '' }}
{%- endset %}

{%- set label_definition = label_text.split() | join(' ') %}
{%- set label_definition_sql = "'" ~ label_definition | replace("'", "''") ~ "'" %}

with snapshot_dates as (   -- the snapshots this run computes: all on a full build
    {{ churn_snapshots_to_compute(window_days, label_definition_sql) }}
),

as_of as (
    select reference_date as as_of_date from {{ ref('int_reference_dates') }} where is_as_of
),

watermark as (
    select {{ ods_load_watermark(include_service=true) }} as built_through_load_id
),

states as (
    select s.*, d.is_as_of
    from {{ ref('int_customer_states_at_dates') }} as s
    inner join snapshot_dates as d on d.snapshot_date = s.reference_date
    where s.status = 'active'
),

computed_dates as (
    select snapshot_date as reference_date from snapshot_dates
),

calls as (   -- inbound call counts per customer per computed snapshot (macros/service_at_dates.sql)
    {{ customer_calls_at_dates('computed_dates') }}
),

complaints as (   -- complaint counts, open cases, SLA and satisfaction per customer per computed snapshot
    {{ customer_complaints_at_dates('computed_dates') }}
),

-- label inputs: data after the snapshot, known by the as-of date. Only snapshots whose window is
-- over by the as-of date get a label, so only consumption days inside their windows are read.
labelled_dates as (
    select d.snapshot_date
    from snapshot_dates as d, as_of as a
    where not d.is_as_of and d.snapshot_date + {{ window_days }} <= a.as_of_date
),

consumption_days as (
    select customer_id, activity_date
    from {{ ref('int_customer_daily_activity') }}
    where consumption_count > 0
      and activity_date > (select min(snapshot_date) from labelled_dates)
      and activity_date <= (select max(snapshot_date) + {{ window_days }} from labelled_dates)
),

closures as (   -- closures recorded by the as-of date (one row per closed version)
    {{ closures_recorded_by('(select as_of_date from as_of)') }}
),

next_consumption as (   -- first consumption day after each labelled snapshot
    select s.customer_id, s.reference_date, d.activity_date as next_consumption_date
    from states as s
    asof left join consumption_days as d
        on d.customer_id = s.customer_id
        and s.reference_date < d.activity_date
    where s.reference_date in (select snapshot_date from labelled_dates)
),

features as (
    select
        s.customer_id,
        s.reference_date as snapshot_date,
        s.is_as_of as is_scoring_snapshot,
        s.tenure_days,
        s.days_since_last_purchase as days_since_last_consumption,
        s.days_since_last_txn,
        s.consumption_txn_count_90d,
        s.non_consumption_txn_count_90d,
        s.spend_30d,
        s.spend_90d,
        s.spend_365d,
        -- relative change against the prior window scaled to the same length: -0.64 = down 64%
        case when s.spend_prior_90d_before_30d > 0
             then s.spend_30d / (s.spend_prior_90d_before_30d / 3) - 1 end as spend_trend_30d_vs_prior_90d,
        case when s.spend_prior_90d > 0
             then s.spend_90d / s.spend_prior_90d - 1 end as spend_trend_90d_vs_prior_90d,
        s.recency_score,
        s.frequency_score,
        s.monetary_score,
        coalesce(p.complaints_90d, 0) as complaints_90d,
        coalesce(p.complaints_365d, 0) as complaints_365d,
        coalesce(p.open_complaints, 0) as open_complaints,
        coalesce(p.open_complaints_beyond_sla, 0) as open_complaints_beyond_sla,
        p.longest_open_complaint_days,
        p.share_resolved_within_sla,
        p.last_satisfaction,
        coalesce(c.calls_30d, 0) as calls_30d,
        coalesce(c.calls_90d, 0) as calls_90d,
        coalesce(c.cancel_intent_calls_90d, 0) as cancel_intent_calls_90d,
        coalesce(c.transfers_90d, 0) as transfers_90d,
        coalesce(c.abandoned_calls_90d, 0) as abandoned_calls_90d,
        coalesce(c.repeat_contacts_30d, 0) as repeat_contacts_30d,
        s.digital_count_90d / nullif(s.txn_count_90d, 0) as digital_share_90d,
        s.branch_count_90d / nullif(s.txn_count_90d, 0) as branch_share_90d,
        s.value_tier,
        s.region,
        s.customer_type,
        s.net_revenue as net_revenue_12m
    from states as s
    left join calls as c on c.reference_date = s.reference_date and c.customer_id = s.customer_id
    left join complaints as p on p.reference_date = s.reference_date and p.customer_id = s.customer_id
),

-- snapshots followed by a closure inside (snapshot, snapshot + window] (rule: macros/churn.sql), so
-- an account closed and reopened before the snapshot is not churned by its old closure
closed_in_window as (
    select distinct f.customer_id, f.snapshot_date
    from features as f
    inner join closures as c
        on c.customer_id = f.customer_id
        and {{ closure_counts_as_churn('c', 'f.snapshot_date', 'f.snapshot_date + ' ~ window_days) }}
),

labelled as (
    select
        f.*,
        f.tenure_days >= {{ min_tenure_days }}
            {%- if min_value is not none %} and f.net_revenue_12m >= {{ min_value }}{% endif %} as is_eligible,
        case
            when f.is_scoring_snapshot or f.snapshot_date + {{ window_days }} > a.as_of_date then null
            when k.customer_id is not null then 1
            {%- if includes_inactivity %}
            when n.next_consumption_date is null or n.next_consumption_date > f.snapshot_date + {{ window_days }} then 1
            {%- endif %}
            else 0
        end as churned
    from features as f
    cross join as_of as a
    left join closed_in_window as k on k.customer_id = f.customer_id and k.snapshot_date = f.snapshot_date
    left join next_consumption as n on n.customer_id = f.customer_id and n.reference_date = f.snapshot_date
)

select
    customer_id::varchar as customer_id,
    snapshot_date::date as snapshot_date,
    is_scoring_snapshot::boolean as is_scoring_snapshot,
    tenure_days::integer as tenure_days,
    days_since_last_consumption::integer as days_since_last_consumption,
    days_since_last_txn::integer as days_since_last_txn,
    consumption_txn_count_90d::integer as consumption_txn_count_90d,
    non_consumption_txn_count_90d::integer as non_consumption_txn_count_90d,
    spend_30d::decimal(18, 2) as spend_30d,
    spend_90d::decimal(18, 2) as spend_90d,
    spend_365d::decimal(18, 2) as spend_365d,
    round(spend_trend_30d_vs_prior_90d, 4)::double as spend_trend_30d_vs_prior_90d,
    round(spend_trend_90d_vs_prior_90d, 4)::double as spend_trend_90d_vs_prior_90d,
    recency_score::integer as recency_score,
    frequency_score::integer as frequency_score,
    monetary_score::integer as monetary_score,
    complaints_90d::integer as complaints_90d,
    complaints_365d::integer as complaints_365d,
    open_complaints::integer as open_complaints,
    open_complaints_beyond_sla::integer as open_complaints_beyond_sla,
    longest_open_complaint_days::integer as longest_open_complaint_days,
    round(share_resolved_within_sla, 4)::double as share_resolved_within_sla,
    last_satisfaction::integer as last_satisfaction,
    calls_30d::integer as calls_30d,
    calls_90d::integer as calls_90d,
    cancel_intent_calls_90d::integer as cancel_intent_calls_90d,
    transfers_90d::integer as transfers_90d,
    abandoned_calls_90d::integer as abandoned_calls_90d,
    repeat_contacts_30d::integer as repeat_contacts_30d,
    round(digital_share_90d, 4)::double as digital_share_90d,
    round(branch_share_90d, 4)::double as branch_share_90d,
    value_tier::varchar as value_tier,
    region::varchar as region,
    customer_type::varchar as customer_type,
    net_revenue_12m::decimal(18, 2) as net_revenue_12m,
    is_eligible::boolean as is_eligible,
    churned::integer as churned,
    {{ window_days }}::integer as label_window_days,
    {{ label_definition_sql }}::varchar as label_definition,
    m.built_through_load_id::bigint as built_through_load_id
from labelled
cross join watermark as m
{% if is_incremental() %}
-- a recomputed snapshot left without any active customer still replaces its old slice: one
-- placeholder row (customer_id null) takes the slice's place in the delete+insert and the post-hook
-- deletes it
union all by name
select d.snapshot_date, null::varchar as customer_id, m.built_through_load_id
from snapshot_dates as d
cross join watermark as m
where d.snapshot_date not in (select reference_date from states)
{% endif %}
