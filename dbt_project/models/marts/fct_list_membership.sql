-- Which lead is in which list (static and smart), with the list's name and when the export
-- that observed the membership was loaded. One row per (list type, list id, lead id).

with members as (
    select 'static' as list_type, list_id, lead_id, _partition_key, _export_id, _loaded_at
    from {{ ref('stg_marketo__static_list_members') }}
    union all
    select 'smart' as list_type, list_id, lead_id, _partition_key, _export_id, _loaded_at
    from {{ ref('stg_marketo__smart_list_members') }}
)

select
    members.list_type || '-' || members.list_id || '/' || members.lead_id as membership_key,
    members.list_type || '-' || members.list_id as list_key,
    members.list_type,
    members.list_id,
    lists.list_name,
    lists.program_name,
    members.lead_id,
    members._loaded_at as observed_at,
    members._export_id as export_id,
    members._partition_key
from members
left join {{ ref('stg_marketo__lists') }} as lists
    on lists.list_type = members.list_type
    and lists.list_id = members.list_id
