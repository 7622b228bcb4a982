{#-
  The reference date of every time-relative metric, as a SQL date expression.
  var('as_of_date') when given (crm-warehouse run --as-of sets it), otherwise the newest extract
  date among the source files loaded into the ODS.
-#}
{% macro as_of_date() -%}
    {%- if var('as_of_date', none) -%}
        date '{{ var("as_of_date") }}'
    {%- else -%}
        (select coalesce(max(extract_date), current_date) from {{ source('ods', 'load_log') }}
         where status = 'loaded' and kind in ('customers', 'transactions', 'calls', 'complaints'))
    {%- endif -%}
{%- endmacro %}
