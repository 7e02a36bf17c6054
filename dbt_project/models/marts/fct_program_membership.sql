-- Which lead is in which program, with what status: one row per (program id, lead id), from
-- the latest member export of each program. `lead_id` is the member as exported;
-- `surviving_lead_id` the lead it is now (map_lead_merges). A staging table not built yet
-- contributes no rows.

{%- set columns = [
    ("program_name", "varchar"),
    ("status_name", "varchar"),
    ("status_reason", "varchar"),
    ("progression_status_type", "varchar"),
    ("membership_date", "timestamptz"),
    ("reached_success", "boolean"),
    ("reached_success_date", "timestamptz"),
    ("is_exhausted", "boolean"),
    ("acquired_by", "boolean"),
    ("nurture_cadence", "varchar"),
    ("nurture_track", "varchar"),
    ("webinar_url", "varchar"),
    ("registration_likelihood", "varchar"),
    ("attendance_likelihood", "varchar"),
    ("waitlist_priority", "varchar"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
] %}

with members as (
    {{ select_built('stg_marketo__program_members', [
        ("program_id", "bigint"),
        ("lead_id", "bigint"),
        ("progression_status", "varchar"),
        ("track_name", "varchar"),
    ] + columns + [
        ("_partition_key", "varchar"),
        ("_export_id", "varchar"),
        ("_loaded_at", "timestamptz"),
    ]) | indent(4) }}
),

merges as (
    {{ select_built('map_lead_merges', [("merged_lead_id", "bigint"), ("surviving_lead_id", "bigint")]) | indent(4) }}
)

select
    members.program_id || '/' || members.lead_id as membership_key,
    members.program_id,
    members.lead_id,
    coalesce(merges.surviving_lead_id, members.lead_id) as surviving_lead_id,
    {%- for name, type in columns %}
    {%- if name == 'status_name' %}
    coalesce(members.status_name, members.progression_status) as status_name,
    {%- elif name == 'nurture_track' %}
    coalesce(members.nurture_track, members.track_name) as nurture_track,
    {%- else %}
    members.{{ name }},
    {%- endif %}
    {%- endfor %}
    members._loaded_at as observed_at,
    members._export_id as export_id,
    members._partition_key
from members
left join merges
    on merges.merged_lead_id = members.lead_id
