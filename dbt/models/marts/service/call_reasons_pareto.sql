-- Call reasons ranked by volume over the last pareto_window_days, with the set covering
-- pareto_share of the calls flagged (the "vital few").
with calls as (
    select reason
    from {{ ref('fct_calls') }}
    where call_date <= {{ as_of_date() }}
      and call_date > {{ as_of_date() }} - {{ var('pareto_window_days') }}
),

counted as (
    select reason, count(*) as calls from calls group by reason
),

ranked as (
    select
        reason,
        calls,
        row_number() over (order by calls desc, reason) as volume_rank,
        calls / sum(calls) over () as share,
        sum(calls) over (order by calls desc, reason rows between unbounded preceding and current row)
            / sum(calls) over () as cumulative_share
    from counted
)

select
    reason,
    volume_rank::integer as volume_rank,
    calls::integer as calls,
    round(share, 6)::double as share,
    round(cumulative_share, 6)::double as cumulative_share,
    cumulative_share - share < {{ var('pareto_share') }} as is_vital_few,
    {{ var('pareto_window_days') }}::integer as window_days,
    {{ as_of_date() }} as as_of_date
from ranked
