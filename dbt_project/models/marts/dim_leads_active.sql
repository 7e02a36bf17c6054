{{ config(materialized='view') }}
-- The leads that still exist in Marketo: dim_leads without the deleted ones (merged-away ids
-- are not in dim_leads at all).
select *
from {{ ref('dim_leads') }}
where not is_deleted
