{#-
  Incremental bookkeeping of churn_features (one slice of rows per snapshot date S: the month-end
  reference dates and the as-of date A).

  A slice reads, for its features, data dated up to S: transactions (int_customer_states_at_dates),
  customer versions written by the end of S, inbound calls started by then and complaint versions
  written by then. Its label (macros/churn.sql) reads the consumption days in (S, S + window] and
  the closures recorded by A, and is null while S + window > A. So on an incremental run a slice is
  recomputed when

  - S is A, or was the scoring snapshot of the previous build (it becomes a month-end), or is not
    in the table yet (a new month-end);
  - its label window ends between the previous build's as-of date and A (the label appears, or
    disappears when A moves back);
  - an ODS load newer than the table's watermark (`built_through_load_id`, the newest load of the
    four kinds seen by the run that built the table last) changed what it reads. Features: every
    day any version of a re-delivered transaction or call was on, the valid_from day of every new
    customer or complaint version (a version counts from the day it was written), so every S on or
    after the first such day. Labels: the transaction days, and the closed_date of every new closed
    customer version and of every closure recorded between the previous as-of date and A (a closure
    recorded late changes old labels), so every S whose window reaches that day and whose label is
    known (S + window <= A);
  - the label definition (the churn vars, in label_definition and label_window_days) is not the one
    the table was built with: then every slice.

  A normal night brings the new day only: it computes the scoring snapshot, the month-end that was
  yesterday's scoring snapshot after a month-end, and the month-end whose label window closes that
  night. Every other slice is kept, exactly as a full refresh would compute it.

  Models calling this need `-- depends_on:` comments for stg_ods__transaction_versions,
  stg_ods__customers, stg_ods__call_versions and stg_ods__complaints (the refs sit in an
  is_incremental() block, which dbt does not parse).
-#}
{% macro churn_snapshots_to_compute(window_days, label_definition) -%}
    {%- if is_incremental() %}
    with built_slices as (
        select
            snapshot_date,
            bool_or(is_scoring_snapshot) as was_scoring_snapshot,
            max(built_through_load_id) as built_through_load_id,
            bool_or(label_window_days <> {{ window_days }} or label_definition <> {{ label_definition }}) as has_other_definition
        from {{ this }}
        group by snapshot_date
    ),

    built as (   -- the previous build: its as-of date, the newest ODS load it had seen, its label definition
        select
            max(snapshot_date) filter (where was_scoring_snapshot) as as_of_date,
            coalesce(max(built_through_load_id), 0) as built_through_load_id,
            coalesce(bool_or(has_other_definition), false) as has_other_definition
        from built_slices
    ),

    current_as_of as (
        select reference_date as as_of_date from {{ ref('int_reference_dates') }} where is_as_of
    ),

    txn_changes as (   -- every day any version of a transaction in the new loads was on
        select min(changed_date) as first_date
        from ({{ ods_changed_dates('(select built_through_load_id from built)', include_customers=false) }})
    ),

    customer_changes as (   -- new customer versions count from the day they were written
        select min(valid_from::date) as first_date
        from {{ ref('stg_ods__customers') }}
        where source_load_id > (select built_through_load_id from built)
    ),

    call_changes as (   -- every day any version of a call in the new loads was on
        select min(v.call_date) as first_date
        from {{ ref('stg_ods__call_versions') }} as v
        where v.call_id in (
            select call_id from {{ ref('stg_ods__call_versions') }}
            where source_load_id > (select built_through_load_id from built)
        )
    ),

    complaint_changes as (   -- new complaint versions count from the day they were written
        select min(valid_from::date) as first_date
        from {{ ref('stg_ods__complaints') }}
        where source_load_id > (select built_through_load_id from built)
    ),

    closure_changes as (   -- closures that are new, or became visible (or invisible) as the as-of date moved
        select min(coalesce(closed_at::date, valid_from::date)) as first_date
        from {{ ref('stg_ods__customers') }}, built as b, current_as_of as a
        where status = 'closed'
          and (
              source_load_id > b.built_through_load_id
              or (valid_from::date > least(b.as_of_date, a.as_of_date)
                  and valid_from::date <= greatest(b.as_of_date, a.as_of_date))
          )
    ),

    changes as (
        select
            least(t.first_date, cu.first_date, ca.first_date, co.first_date) as first_feature_date,
            least(t.first_date, cl.first_date) as first_label_date
        from txn_changes as t, customer_changes as cu, call_changes as ca, complaint_changes as co,
             closure_changes as cl
    )

    select r.reference_date as snapshot_date, r.is_as_of
    from {{ ref('int_reference_dates') }} as r, built as b, current_as_of as a, changes as c
    where (r.is_month_end or r.is_as_of)
      and (
          r.is_as_of
          or b.as_of_date is null   -- nothing built yet (or no scoring rows to tell the previous as-of date)
          or b.has_other_definition
          or r.reference_date not in (select snapshot_date from built_slices)
          or r.reference_date in (select snapshot_date from built_slices where was_scoring_snapshot)
          or (r.reference_date + {{ window_days }} > least(b.as_of_date, a.as_of_date)
              and r.reference_date + {{ window_days }} <= greatest(b.as_of_date, a.as_of_date))
          or r.reference_date >= c.first_feature_date
          or (r.reference_date + {{ window_days }} <= a.as_of_date
              and r.reference_date + {{ window_days }} >= c.first_label_date)
      )
    {%- else %}
    select reference_date as snapshot_date, is_as_of
    from {{ ref('int_reference_dates') }}
    where is_month_end or is_as_of
    {%- endif %}
{%- endmacro %}
