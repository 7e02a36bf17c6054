-- Which lead is in which list (static and smart), with the list's name and when the export
-- that observed the membership was loaded. One row per (list type, list id, lead id).
-- A list type never exported (its staging table not built) contributes no rows; before the
-- list catalog is loaded, names are NULL.

{%- set kinds = {'stg_marketo__static_list_members': 'static', 'stg_marketo__smart_list_members': 'smart'} %}
{%- set built = built_relations(kinds.keys() | list) %}
{%- set catalog = built_relations(['stg_marketo__lists']) %}

with members as (
{%- for relation in built %}
    select
        '{{ kinds[relation.identifier] }}' as list_type,
        list_id,
        lead_id,
        _partition_key,
        _export_id,
        _loaded_at
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- else %}
    select cast(null as varchar) as list_type, * from (
        {{ empty_relation([
            ("", "list_id", "bigint"),
            ("", "lead_id", "bigint"),
            ("", "_partition_key", "varchar"),
            ("", "_export_id", "varchar"),
            ("", "_loaded_at", "timestamptz"),
        ]) | indent(8) }}
    ) as no_members
{%- endfor %}
),

lists as (
{%- if catalog %}
    select list_type, list_id, list_name, program_name from {{ catalog[0] }}
{%- else %}
    select
        cast(null as varchar) as list_type,
        cast(null as bigint) as list_id,
        cast(null as varchar) as list_name,
        cast(null as varchar) as program_name
    from (select 1) as nothing
    where false
{%- endif %}
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
left join lists
    on lists.list_type = members.list_type
    and lists.list_id = members.list_id
