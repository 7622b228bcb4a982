-- Customer states at the as-of date (the slice every as-of mart shows).
select s.* exclude (built_through_load_id)
from {{ ref('int_customer_states_at_dates') }} as s
inner join {{ ref('int_reference_dates') }} as r
    on r.reference_date = s.reference_date and r.is_as_of
