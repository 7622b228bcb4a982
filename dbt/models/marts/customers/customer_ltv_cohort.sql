-- Cohort lifetime value per signup-year cohort x value tier: the discounted, margin-adjusted profit
-- of the cohort over ltv_horizon_years, divided by the cohort size (see customer_ltv_cohort_years).
with years as (
    select * from {{ ref('customer_ltv_cohort_years') }}
)

select
    signup_year,
    value_tier,
    max(cohort_customers)::integer as cohort_customers,
    count(*) filter (where is_observed)::integer as observed_years,
    {{ var('ltv_horizon_years') }}::integer as horizon_years,
    {{ var('discount_rate') }}::double as discount_rate,
    {{ var('gross_margin') }}::double as gross_margin,
    round(sum(discounted_profit) / max(cohort_customers), 2)::decimal(18, 2) as clv_per_customer,
    round(sum(discounted_profit), 2)::decimal(18, 2) as cohort_clv_total
from years
group by signup_year, value_tier
