{#-
  RFM quintile score 1-5 within a partition. Higher is better: for recency pass the days since the
  last purchase with descending=true. Ties always share a score (the score of the first tied row),
  so scores do not depend on row order or on customer ids.
-#}
{% macro quintile_score(column, partition_by, descending=false) -%}
    {{ quintile_of_rank(
        'rank() over (partition by ' ~ partition_by ~ ' order by ' ~ column ~ (' desc' if descending else ' asc') ~ ')',
        'count(*) over (partition by ' ~ partition_by ~ ')'
    ) }}
{%- endmacro %}

{#- The same score from a row's rank (BIGINT, 1 = first) among `count` (BIGINT) rows. -#}
{% macro quintile_of_rank(rank, count) -%}
    (1 + floor(5.0 * ({{ rank }} - 1) / {{ count }}))::integer
{%- endmacro %}

{#- The standard R x F segment grid (documented as a table in the marts docs). -#}
{% macro rfm_segment(r, f) -%}
    case
        when {{ r }} is null or {{ f }} is null then 'Lost'
        when {{ r }} = 5 and {{ f }} >= 4 then 'Champions'
        when {{ r }} >= 3 and {{ f }} >= 4 then 'Loyal'
        when {{ r }} >= 4 and {{ f }} between 2 and 3 then 'Potential Loyalist'
        when {{ r }} = 5 and {{ f }} = 1 then 'New Customers'
        when {{ r }} = 4 and {{ f }} = 1 then 'Promising'
        when {{ r }} = 3 and {{ f }} = 3 then 'Need Attention'
        when {{ r }} = 3 and {{ f }} <= 2 then 'About To Sleep'
        when {{ r }} <= 2 and {{ f }} = 5 then 'Can''t Lose Them'
        when {{ r }} <= 2 and {{ f }} >= 3 then 'At Risk'
        else 'Hibernating'
    end
{%- endmacro %}
