-- Which lead is in which program, with what status: one row per (program id, lead id), from
-- the latest member export of each program. `lead_id` is the member as exported;
-- `surviving_lead_id` the lead it is now (map_lead_merges). A staging table not built yet
-- contributes no rows.

{%- set members = built_relations(['stg_marketo__program_members']) %}
{%- set merges = built_relations(['map_lead_merges']) %}
{%- set columns = [
    ("program_name", "varchar"),
    ("status_name", "varchar"),
    ("progression_status_type", "varchar"),
    ("membership_date", "timestamptz"),
    ("reached_success", "boolean"),
    ("reached_success_date", "timestamptz"),
    ("is_exhausted", "boolean"),
    ("acquired_by", "boolean"),
    ("nurture_cadence", "varchar"),
    ("track_name", "varchar"),
    ("webinar_url", "varchar"),
    ("registration_likelihood", "varchar"),
    ("attendance_likelihood", "varchar"),
    ("waitlist_priority", "varchar"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
] %}

with members as (
{%- if members %}
    select
        program_id,
        lead_id,
        {%- for name, type in columns %}
        {%- if name == 'status_name' %}
        coalesce(status_name, progression_status) as status_name,
        {%- else %}
        {{ name }},
        {%- endif %}
        {%- endfor %}
        _partition_key,
        _export_id,
        _loaded_at
    from {{ members[0] }}
{%- else %}
    select
        cast(null as bigint) as program_id,
        cast(null as bigint) as lead_id,
        {%- for name, type in columns %}
        cast(null as {{ marketo_sql_type(type) }}) as {{ name }},
        {%- endfor %}
        cast(null as varchar) as _partition_key,
        cast(null as varchar) as _export_id,
        cast(null as {{ marketo_sql_type('timestamptz') }}) as _loaded_at
    from (select 1) as nothing
    where false
{%- endif %}
),

merges as (
{%- if merges %}
    select merged_lead_id, surviving_lead_id from {{ merges[0] }}
{%- else %}
    select cast(null as bigint) as merged_lead_id, cast(null as bigint) as surviving_lead_id
    from (select 1) as nothing
    where false
{%- endif %}
)

select
    members.program_id || '/' || members.lead_id as membership_key,
    members.program_id,
    members.lead_id,
    coalesce(merges.surviving_lead_id, members.lead_id) as surviving_lead_id,
    {%- for name, type in columns %}
    members.{{ name }},
    {%- endfor %}
    members._loaded_at as observed_at,
    members._export_id as export_id,
    members._partition_key
from members
left join merges
    on merges.merged_lead_id = members.lead_id
