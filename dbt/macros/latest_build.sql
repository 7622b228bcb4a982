{#-
  Data tests of incremental tables check what the latest build wrote.

  An incremental night rewrites a few slices of a large table (churn_features, the "at dates"
  slices) or appends one day (fct_transactions); every row it writes carries the table's
  watermark `built_through_load_id`, the newest ODS load the build had seen, which no older row
  exceeds. So "the rows of the latest build" are the rows with the table's largest watermark: a
  superset of what this night wrote (it also holds the rows of earlier builds that saw no newer
  load), and, after a `--full-refresh`, every row (a --full-refresh build drops the scope anyway).

  Tests of such a table declare `config: {where: "__latest_build__"}`: get_where_subquery below
  replaces the placeholder with that condition, so not_null, accepted_values, accepted_range,
  relationships and expression_is_true check the rows a night can have changed. Uniqueness needs
  the whole table (a new row may repeat the key of an old one): unique_combination_of_columns with
  `keys_of_latest_build: true` counts, over the whole table, the keys that appear in the latest
  build. `--vars '{"test_all_rows": true}'` tests every row again, e.g. after a failed night was
  repaired without a full refresh.
-#}

{#- True when every row is tested: a --full-refresh build, or var test_all_rows. -#}
{% macro tests_every_row() -%}
    {{ return(flags.FULL_REFRESH or var('test_all_rows', false)) }}
{%- endmacro %}

{#- SQL condition: the rows of the latest build of `relation` (every row when tests_every_row()). -#}
{% macro latest_build_rows(relation, watermark='built_through_load_id') -%}
    {%- if tests_every_row() -%}
        true
    {%- else -%}
        {{ watermark }} = (select max({{ watermark }}) from {{ relation }})
    {%- endif -%}
{%- endmacro %}

{#- dbt's get_where_subquery (the `where` test config), with the __latest_build__ placeholder. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__latest_build__', latest_build_rows(relation)) -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
