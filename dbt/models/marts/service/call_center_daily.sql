-- Call-center KPIs per day and queue, for calls up to the as-of date.
with calls as (
    select
        c.*,
        -- repeat contact: the same identified customer calls again within repeat_contact_days
        c.customer_id is not null and lead(c.started_at) over (
            partition by c.customer_id order by c.started_at, c.call_id
        ) <= c.started_at + to_days({{ var('repeat_contact_days') }}) as is_repeat_contact
    from {{ ref('fct_calls') }} as c
    where c.call_date <= {{ as_of_date() }}
)

select
    call_date || ':' || queue as call_center_day_id,
    call_date,
    queue,
    count(*)::integer as calls,
    count(*) filter (where is_answered)::integer as answered,
    count(*) filter (where is_abandoned)::integer as abandoned,
    round(count(*) filter (where is_abandoned) / count(*), 4)::double as abandonment_rate,
    round(avg(wait_seconds), 1)::double as avg_wait_seconds,
    quantile_cont(wait_seconds, 0.9)::double as p90_wait_seconds,
    round(avg(talk_seconds) filter (where is_answered), 1)::double as avg_talk_seconds,
    round(
        count(*) filter (where is_answered and is_resolved and not is_transferred and not coalesce(is_repeat_contact, false))
        / nullif(count(*) filter (where is_answered), 0), 4
    )::double as first_contact_resolution_rate,
    round(count(*) filter (where is_transferred) / nullif(count(*) filter (where is_answered), 0), 4)::double
        as transfer_rate,
    round(count(*) filter (where is_repeat_contact) / nullif(count(*) filter (where customer_id is not null), 0), 4)::double
        as repeat_contact_rate,
    call_date <= {{ as_of_date() }} - {{ var('repeat_contact_days') }} as is_repeat_window_complete
from calls
group by call_date, queue
