{#-
  No two rows share the same values in all of the given columns (or, as a column test, in the
  column). With keys_of_latest_build, only the keys that appear in the latest build of an
  incremental table are counted, over the whole table, so a new row repeating an old row's key
  fails as well (macros/latest_build.sql). Do not combine it with a `where` config: the count needs
  the unfiltered table.
-#}
{% test unique_combination_of_columns(model, combination_of_columns=none, column_name=none, keys_of_latest_build=false) %}
{%- set keys = combination_of_columns or [column_name] %}
{%- set columns = keys | join(', ') %}
select {{ columns }}, count(*) as n
from {{ model }} as t
{%- if keys_of_latest_build and not tests_every_row() %}
semi join (
    select distinct {{ columns }} from {{ model }} where {{ latest_build_rows(model) }}
) as k
    on {% for c in keys %}t.{{ c }} is not distinct from k.{{ c }}{% if not loop.last %} and {% endif %}{% endfor %}
{%- endif %}
group by {{ columns }}
having count(*) > 1
{% endtest %}
