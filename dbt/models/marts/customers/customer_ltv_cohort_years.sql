-- The cohort CLV formula year by year: CLV = sum over n=1..m of N_n (1 - L_n) P_n / (1 + i)^n, / N.
-- The cohort (N) is the signup year x the customers' value tier today: the customers being valued.
-- Year n's retention and profit (L_n, P_n) come from int_customer_relationship_years, grouped by
-- the tier each customer had at the START of year n, so accounts that closed (and are ordinary
-- today) still count against the tier they were in: no survivorship bias. A year without
-- observations takes the nearest observed year of the same cohort and tier (later years: the
-- latest observed retention).
with cohorts as (
    select year(signup_date) as signup_year, value_tier, count(*) as cohort_customers
    from {{ ref('int_as_of_states') }}
    group by all
),

observed as (
    select
        signup_year,
        year_start_value_tier as value_tier,
        year_number,
        count(*) filter (where is_open_at_start) as open_at_start,
        count(*) filter (where is_open_at_start and is_open_at_end) as open_at_end,
        sum(net_revenue) filter (where is_open_at_start) as net_revenue
    from {{ ref('int_customer_relationship_years') }}
    group by all
),

observed_rates as (
    select
        *,
        1.0 - open_at_end / open_at_start as churn_rate,
        {{ var('gross_margin') }} * net_revenue / nullif(open_at_end, 0) as profit_per_survivor
    from observed
    where open_at_start > 0
),

pooled as (   -- fallback for cohort x tier groups with no observed year at all
    select
        value_tier,
        1.0 - sum(open_at_end) / sum(open_at_start) as churn_rate,
        {{ var('gross_margin') }} * sum(net_revenue) / nullif(sum(open_at_end), 0) as profit_per_survivor
    from observed
    group by value_tier
    having sum(open_at_start) > 0
),

grid as (
    select c.signup_year, c.value_tier, c.cohort_customers, n.year_number
    from cohorts as c
    cross join (select unnest(range(1, {{ var('ltv_horizon_years') }} + 1)) as year_number) as n
),

filled as (
    select
        g.*,
        o.year_number is not null as is_observed,
        coalesce(o.churn_rate, later.churn_rate, earlier.churn_rate, p.churn_rate) as churn_rate,
        coalesce(o.profit_per_survivor, later.profit_per_survivor, earlier.profit_per_survivor, p.profit_per_survivor)
            as profit_per_survivor
    from grid as g
    left join observed_rates as o
        on o.signup_year = g.signup_year and o.value_tier = g.value_tier and o.year_number = g.year_number
    asof left join observed_rates as later     -- latest observed year at or before this one
        on later.signup_year = g.signup_year and later.value_tier = g.value_tier
        and g.year_number >= later.year_number
    left join (
        select *, row_number() over (partition by signup_year, value_tier order by year_number) as _r
        from observed_rates
    ) as earlier
        on earlier.signup_year = g.signup_year and earlier.value_tier = g.value_tier and earlier._r = 1
    left join pooled as p on p.value_tier = g.value_tier
),

projected as (
    select
        *,
        cohort_customers * coalesce(exp(sum(ln(greatest(1.0 - churn_rate, 1e-12))) over (
            partition by signup_year, value_tier order by year_number
            rows between unbounded preceding and 1 preceding
        )), 1.0) as customers_at_start
    from filled
)

select
    signup_year::integer as signup_year,
    value_tier,
    year_number::integer as year_number,
    is_observed,
    cohort_customers::integer as cohort_customers,
    round(customers_at_start, 4)::double as customers_at_start,
    round(churn_rate, 6)::double as churn_rate,
    round(profit_per_survivor, 4)::double as profit_per_survivor,
    round(customers_at_start * (1 - churn_rate) * profit_per_survivor
          / pow(1 + {{ var('discount_rate') }}, year_number), 4)::double as discounted_profit
from projected
