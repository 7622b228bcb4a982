-- Did the retention calls work? One row per list date x team x agent, plus one row per list date x
-- team for all agents together (agent null). Contacted customers are compared with the team's
-- control group of the same list date over the churn window after the list's as-of date.
{#
  The members table is written by the Python target-list asset. Until it has run once (a fresh
  warehouse, or dbt run by hand) the table does not exist: the report is then empty rather than an
  error. Unit tests replace the source with their own rows, so the check only applies to real runs.
-#}
{%- set members_source = source('retention', 'target_list_members') -%}
{%- set members_exist = true -%}
{%- if execute and members_source is not string and members_source.identifier == 'target_list_members' -%}
    {%- set members_exist = adapter.get_relation(
        database=members_source.database, schema=members_source.schema, identifier=members_source.identifier
    ) is not none -%}
{%- endif %}

with members as (
    {%- if members_exist %}
    select * from {{ members_source }}
    {%- else %}
    select
        null::date as list_date, null::varchar as list_id, null::varchar as team, null::varchar as customer_id,
        null::boolean as is_control, null::boolean as in_list_range, null::varchar as agent, null::date as as_of_date
    where false
    {%- endif %}
),

outcomes as (
    select * from {{ ref('stg_ods__outcomes') }}
),

-- account closures known by the report date; which of them count as churn in a list's window is
-- the rule shared with the churn label (macros/churn.sql)
closures as (
    {{ closures_recorded_by(as_of_date()) }}
),

consumption as (
    select customer_id, txn_date from {{ ref('fct_transactions') }}
    where is_consumption
),

report_date as (
    select {{ as_of_date() }} as report_as_of_date
),

-- what the teams reported per listed customer (any outcome = a contact attempt)
member_outcomes as (
    select
        list_id,
        customer_id,
        bool_or(is_reached) as is_reached,
        bool_or(outcome = 'retained') as is_retained
    from outcomes
    group by list_id, customer_id
),

-- the churn window: the retention_window_days after the as-of date the list was built from
member_windows as (
    select
        m.list_date,
        m.list_id,
        m.team,
        m.agent,
        m.customer_id,
        m.is_control,
        m.in_list_range,
        m.as_of_date,
        (m.as_of_date + {{ var('retention_window_days') }})::date as window_end_date,
        r.report_as_of_date >= (m.as_of_date + {{ var('retention_window_days') }})::date as is_window_complete
    from members as m
    cross join report_date as r
),

window_activity as (
    select
        w.list_date,
        w.customer_id,
        count(t.customer_id) as consumption_txns
    from member_windows as w
    left join consumption as t
        on t.customer_id = w.customer_id
        and t.txn_date > w.as_of_date
        and t.txn_date <= w.window_end_date
    where w.is_window_complete
    group by w.list_date, w.customer_id
),

member_results as (
    select
        w.*,
        o.list_id is not null as is_contacted,
        coalesce(o.is_reached, false) as is_reached,
        coalesce(o.is_retained, false) as is_retained,
        case
            when w.is_window_complete then
                exists (
                    select 1 from closures as c
                    where c.customer_id = w.customer_id
                      and {{ closure_counts_as_churn('c', 'w.as_of_date', 'w.window_end_date') }}
                )
                or coalesce(a.consumption_txns, 0) = 0
        end as is_churned
    from member_windows as w
    left join member_outcomes as o on o.list_id = w.list_id and o.customer_id = w.customer_id
    left join window_activity as a on a.list_date = w.list_date and a.customer_id = w.customer_id
),

-- the team's control customers who would have been listed (see _retention__docs.md)
control_groups as (
    select
        list_date,
        team,
        count(*) as control_held_out,
        count(*) filter (where in_list_range) as control_customers,
        count(*) filter (where in_list_range and is_churned) as control_churned
    from member_results
    where is_control
    group by list_date, team
),

listed_groups as (
    select
        list_date,
        team,
        agent,
        any_value(list_id) as list_id,
        any_value(as_of_date) as as_of_date,
        any_value(window_end_date) as window_end_date,
        bool_and(is_window_complete) as is_window_complete,
        count(*) as listed,
        count(*) filter (where is_contacted) as contacted,
        count(*) filter (where is_reached) as reached,
        count(*) filter (where is_retained) as self_reported_retained,
        count(*) filter (where is_churned) as listed_churned,
        count(*) filter (where is_contacted and is_churned) as contacted_churned
    from member_results
    where not is_control
    group by grouping sets ((list_date, team, agent), (list_date, team))
),

rates as (
    select
        l.*,
        coalesce(c.control_held_out, 0) as control_held_out,
        coalesce(c.control_customers, 0) as control_customers,
        coalesce(c.control_churned, 0) as control_churned,
        case when l.is_window_complete and l.listed > 0
            then l.listed_churned / l.listed end as p_listed,
        case when l.is_window_complete and l.contacted > 0
            then l.contacted_churned / l.contacted end as p_contacted,
        case when l.is_window_complete and c.control_customers > 0
            then c.control_churned / c.control_customers end as p_control
    from listed_groups as l
    left join control_groups as c on c.list_date = l.list_date and c.team = l.team
),

uplift as (
    select
        *,
        p_control - p_contacted as uplift_raw,
        sqrt(
            p_control * (1 - p_control) / control_customers
            + p_contacted * (1 - p_contacted) / contacted
        ) as uplift_se_raw
    from rates
)

select
    list_date,
    team,
    agent,
    list_id,
    as_of_date,
    window_end_date,
    coalesce(is_window_complete, false) as is_window_complete,
    listed::integer as listed,
    contacted::integer as contacted,
    reached::integer as reached,
    self_reported_retained::integer as self_reported_retained,
    control_held_out::integer as control_held_out,
    control_customers::integer as control_customers,
    case when is_window_complete then contacted_churned end::integer as contacted_churned,
    case when is_window_complete then control_churned end::integer as control_churned,
    round(p_listed, 4)::double as churn_rate_listed,
    round(p_contacted, 4)::double as churn_rate_contacted,
    round(p_control, 4)::double as churn_rate_control,
    round(uplift_raw, 4)::double as uplift,
    round(uplift_se_raw, 4)::double as uplift_std_error,
    round(uplift_raw - {{ var('retention_uplift_z') }} * uplift_se_raw, 4)::double as uplift_ci_low,
    round(uplift_raw + {{ var('retention_uplift_z') }} * uplift_se_raw, 4)::double as uplift_ci_high
from uplift
