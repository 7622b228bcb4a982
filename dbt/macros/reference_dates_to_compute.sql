{#-
  Incremental bookkeeping of the "at dates" models (one slice of rows per reference date).

  A slice at date R depends only on data dated up to R: transactions on days <= R and customer
  versions written (valid_from) by the end of R. So on an incremental run a slice is recomputed
  when its date is the as-of or observation-start date (they move every night), when it was not
  computed yet (a new month-end), or when an ODS load newer than the table's watermark
  (`built_through_load_id`, the newest ODS load seen by the run that built the table last) changed
  data dated on or before R: every day any version of a re-delivered transaction was on, and the
  valid_from day of every new customer version. A normal night only brings the new day, so only the
  as-of and observation-start slices and new month-ends are computed; a late or corrected file for
  a past day also recomputes every slice from that day on, exactly as a full refresh would.
-#}

{#-
  The newest ODS load the models read (transactions and customers; with include_service, also
  calls and complaints): stored in every computed row. Load ids come from one sequence for every
  kind, so any later load of any kind has a larger id.
-#}
{% macro ods_load_watermark(include_service=false) -%}
    greatest(
        (select coalesce(max(source_load_id), 0) from {{ ref('stg_ods__transaction_versions') }}),
        (select coalesce(max(source_load_id), 0) from {{ ref('stg_ods__customers') }})
        {%- if include_service %},
        (select coalesce(max(source_load_id), 0) from {{ ref('stg_ods__call_versions') }}),
        (select coalesce(max(source_load_id), 0) from {{ ref('stg_ods__complaints') }})
        {%- endif %}
    )::bigint
{%- endmacro %}

{#-
  The days whose data ODS loads newer than `since` (a SQL expression) changed: for every
  transaction with a version in those loads, the day of each of its versions (old and new); with
  include_customers, the valid_from day of each customer version in those loads.
  Models calling this need `-- depends_on:` comments for stg_ods__transaction_versions and
  stg_ods__customers (the refs sit in an is_incremental() block, which dbt does not parse).
-#}
{% macro ods_changed_dates(since, include_customers=true) -%}
    select v.txn_date as changed_date
    from {{ ref('stg_ods__transaction_versions') }} as v
    where v.txn_id in (
        select txn_id from {{ ref('stg_ods__transaction_versions') }} where source_load_id > {{ since }}
    )
    {%- if include_customers %}
    union all
    select valid_from::date as changed_date
    from {{ ref('stg_ods__customers') }}
    where source_load_id > {{ since }}
    {%- endif %}
{%- endmacro %}

{#-
  The reference dates an "at dates" model computes in this run: all of them on a full build; on
  an incremental run the ones described above. `include_customers`: whether customer versions feed
  the model (false for the activity slices, which read transactions only).
-#}
{% macro reference_dates_to_compute(include_customers=true) -%}
    select reference_date from {{ ref('int_reference_dates') }}
    {% if is_incremental() %}
    where is_as_of or is_observation_start
       or reference_date not in (select distinct reference_date from {{ this }})
       or reference_date >= (
           select min(changed_date) from (
               {{ ods_changed_dates('(select coalesce(max(built_through_load_id), 0) from ' ~ this ~ ')', include_customers) }}
           )
       )
    {% endif %}
{%- endmacro %}

{#-
  Post-hook of the "at dates" models: drop slices of dates that are no longer reference dates.
  `date_column`: the model's column holding the reference date; `kinds`: a SQL condition on
  int_reference_dates for the dates the model keeps (churn_features: month-ends and the as-of date).
-#}
{% macro drop_stale_reference_dates(date_column='reference_date', kinds='true') -%}
    {% if is_incremental() %}
    delete from {{ this }} where {{ date_column }} not in (
        select reference_date from {{ ref('int_reference_dates') }} where {{ kinds }}
    )
    {% endif %}
{%- endmacro %}
