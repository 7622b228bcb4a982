select txn_id, customer_id, txn_at, amount from {{ source('ods', 'transactions_current') }}
