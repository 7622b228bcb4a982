{#-
  The reference dates an "at dates" model computes in this run: all of them on a full build; on
  an incremental run only the as-of and observation-start dates (they move every night) and
  month-ends not computed yet (a month-end slice depends only on data up to that day, so it does
  not change afterwards; late-arriving corrections for past days need a --full-refresh).
-#}
{% macro reference_dates_to_compute() -%}
    select reference_date from {{ ref('int_reference_dates') }}
    {% if is_incremental() %}
    where is_as_of or is_observation_start
       or reference_date not in (select distinct reference_date from {{ this }})
    {% endif %}
{%- endmacro %}

{#- Post-hook of the "at dates" models: drop slices of dates that are no longer reference dates. -#}
{% macro drop_stale_reference_dates() -%}
    {% if is_incremental() %}
    delete from {{ this }} where reference_date not in (select reference_date from {{ ref('int_reference_dates') }})
    {% endif %}
{%- endmacro %}
