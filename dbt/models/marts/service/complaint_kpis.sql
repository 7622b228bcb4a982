-- Complaint handling per month x category x channel, from each complaint's state as of the as-of date.
with complaints as (
    select * from {{ ref('fct_complaints') }}
),

months as (
    select unnest(generate_series(
        date_trunc('month', (select min(opened_at) from complaints)),
        date_trunc('month', {{ as_of_date() }}),
        interval 1 month
    ))::date as month_start
),

bounds as (
    select month_start, least(month_start + interval 1 month, {{ as_of_date() }} + interval 1 day) as month_end
    from months
),

combos as (
    select distinct category, channel from complaints
),

grid as (
    select b.month_start, b.month_end, c.category, c.channel from bounds as b cross join combos as c
),

previous_complaints as (   -- repeat complainant: another complaint opened in the 90 days before
    select
        complaint_id,
        lag(opened_at) over (partition by customer_id order by opened_at, complaint_id) as previous_opened_at
    from complaints
),

measures as (
    select
        g.month_start,
        g.category,
        g.channel,
        count(*) filter (where c.opened_at >= g.month_start and c.opened_at < g.month_end) as opened,
        count(*) filter (where c.is_resolved and c.resolved_at >= g.month_start and c.resolved_at < g.month_end) as resolved,
        count(*) filter (where c.opened_at < g.month_end and (not c.is_resolved or c.resolved_at >= g.month_end)) as backlog,
        quantile_cont(c.resolution_hours, 0.5) filter (
            where c.is_resolved and c.resolved_at >= g.month_start and c.resolved_at < g.month_end) as resolution_hours_p50,
        quantile_cont(c.resolution_hours, 0.9) filter (
            where c.is_resolved and c.resolved_at >= g.month_start and c.resolved_at < g.month_end) as resolution_hours_p90,
        avg(c.is_sla_breached::integer) filter (
            where c.is_resolved and c.resolved_at >= g.month_start and c.resolved_at < g.month_end) as sla_breach_rate,
        avg(c.satisfaction) filter (
            where c.is_resolved and c.resolved_at >= g.month_start and c.resolved_at < g.month_end) as avg_satisfaction,
        count(distinct c.customer_id) filter (
            where c.opened_at >= g.month_start and c.opened_at < g.month_end
              and p.previous_opened_at >= c.opened_at - interval 90 day) as repeat_complainants
    from grid as g
    left join complaints as c on c.category = g.category and c.channel = g.channel and c.opened_at < g.month_end
    left join previous_complaints as p on p.complaint_id = c.complaint_id
    group by g.month_start, g.category, g.channel
)

select
    month_start || ':' || category || ':' || channel as complaint_kpi_id,
    month_start as month,
    category,
    channel,
    opened::integer as opened,
    resolved::integer as resolved,
    backlog::integer as backlog,
    round(resolution_hours_p50, 2)::double as resolution_hours_p50,
    round(resolution_hours_p90, 2)::double as resolution_hours_p90,
    round(sla_breach_rate, 4)::double as sla_breach_rate,
    round(avg_satisfaction, 2)::double as avg_satisfaction,
    repeat_complainants::integer as repeat_complainants
from measures
