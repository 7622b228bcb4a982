-- One row per customer per reference date with an inbound call in the 90 days up to it: call
-- counts from calls started by the end of that day (point in time). Outbound calls (our own sales
-- and follow-up calls) and calls from unidentified callers do not count.
with reference_dates as (
    select reference_date from {{ ref('int_reference_dates') }}
),

calls as (
    select
        customer_id,
        call_date,
        transfers,
        is_abandoned,
        is_cancel_intent,
        -- repeat contact: the customer had already called within repeat_contact_days before this call
        -- (looks backwards only, so later calls never change an earlier date's counts)
        coalesce(
            lag(started_at) over (partition by customer_id order by started_at, call_id)
                >= started_at - to_days({{ var('repeat_contact_days') }}),
            false
        ) as is_repeat_contact
    from {{ ref('stg_ods__calls') }}
    where customer_id is not null
      and direction = 'inbound'
),

windowed as (
    select
        r.reference_date,
        c.customer_id,
        count(*) filter (where c.call_date > r.reference_date - 30) as calls_30d,
        count(*) as calls_90d,
        count(*) filter (where c.is_cancel_intent) as cancel_intent_calls_90d,
        coalesce(sum(c.transfers), 0) as transfers_90d,
        count(*) filter (where c.is_abandoned) as abandoned_calls_90d,
        count(*) filter (where c.is_repeat_contact and c.call_date > r.reference_date - 30) as repeat_contacts_30d
    from reference_dates as r
    inner join calls as c
        on c.call_date <= r.reference_date
        and c.call_date > r.reference_date - 90
    group by r.reference_date, c.customer_id
)

select * from windowed
