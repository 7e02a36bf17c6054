-- New leads per day and lead source, for a dashboard. Days are calendar days in the
-- `reporting_timezone` var (UTC by default); leads without a source count under '(none)'.

select
    cast(timezone('{{ var("reporting_timezone") }}', created_at) as date) as created_date,
    coalesce(lead_source, '(none)') as lead_source,
    count(*) as leads_created,
    count(*) filter (where unsubscribed) as leads_unsubscribed
from {{ ref('dim_leads') }}
where created_at is not null
group by 1, 2
order by created_date, lead_source
