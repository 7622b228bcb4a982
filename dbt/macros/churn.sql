{#-
  Whether an account closure counts as churn in the window (start_date, end_date], the rule shared
  by the churn label (churn_features) and the observed churn of segment_summary. `closure` is a
  relation alias with closed_date (the day the closure took effect: closed_at, else the day it was
  recorded) and recorded_date (the valid_from day of the closed version).

  A closure counts when it takes effect inside the window, or when it is dated earlier but was
  recorded only after start_date (the customer looked active at the start, as far as anyone could
  know then). A closure already recorded by start_date and dated before it is history: the account
  was reopened since (the customer is active at the start), so it never counts again.
-#}
{% macro closure_counts_as_churn(closure, start_date, end_date) -%}
    ({{ closure }}.closed_date <= {{ end_date }}
     and ({{ closure }}.closed_date > {{ start_date }} or {{ closure }}.recorded_date > {{ start_date }}))
{%- endmacro %}

{#- Closed versions of customer records written by the end of as_of_date (a SQL date expression). -#}
{% macro closures_recorded_by(as_of_date) -%}
    select
        customer_id,
        coalesce(closed_at::date, valid_from::date) as closed_date,
        valid_from::date as recorded_date
    from {{ ref('stg_ods__customers') }}
    where status = 'closed'
      and valid_from < {{ as_of_date }} + interval 1 day
{%- endmacro %}
