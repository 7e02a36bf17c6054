-- One row per Marketo activity, with its type's name and the attributes of the common types
-- unpacked into typed columns (NULL for other types, and where an attribute is missing):
-- email sends, deliveries, opens and clicks; form fills; web page visits and link clicks;
-- score changes. Every activity keeps its `attributes` JSON for the rest.
-- `lead_id` is the lead as exported; `surviving_lead_id` the lead it is now (map_lead_merges).
-- A staging table not built yet contributes no rows (activities) or no names (types).

{%- set groups = marketo_activity_groups() %}
{%- set opened = [10, 11] %}
{%- set visited = [1, 2, 3] %}

with activities as (
    {{ select_built('stg_marketo__activities', [
        ("marketo_guid", "varchar"),
        ("lead_id", "bigint"),
        ("activity_date", "timestamptz"),
        ("activity_type_id", "integer"),
        ("campaign_id", "bigint"),
        ("primary_attribute_value_id", "bigint"),
        ("primary_attribute_value", "varchar"),
        ("attributes", "json"),
        ("action_result", "varchar"),
        ("_partition_key", "varchar"),
        ("_export_id", "varchar"),
        ("_loaded_at", "timestamptz"),
    ]) | indent(4) }}
),

catalog as (
    {{ select_built('stg_marketo__activity_types', [
        ("activity_type_id", "integer"), ("activity_type_name", "varchar")
    ]) | indent(4) }}
),

-- renamed: the unpacking macros read `activity_type_id`, which must be the activity's alone
activity_types as (
    select activity_type_id as type_id, activity_type_name from catalog
),

merges as (
    {{ select_built('map_lead_merges', [("merged_lead_id", "bigint"), ("surviving_lead_id", "bigint")]) | indent(4) }}
)

select
    activities.marketo_guid,
    activities.activity_date,
    activities.activity_type_id,
    activity_types.activity_type_name,
    case
    {%- for group, type_ids in groups.items() %}
        when activities.activity_type_id in ({{ type_ids | join(', ') }}) then '{{ group }}'
    {%- endfor %}
        else 'other'
    end as activity_group,
    activities.lead_id,
    coalesce(merges.surviving_lead_id, activities.lead_id) as surviving_lead_id,
    activities.campaign_id,
    activities.primary_attribute_value_id,
    activities.primary_attribute_value,
    activities.action_result,

    -- email (send, delivered, bounced, unsubscribe, open, click)
    {{ activity_primary(groups.email, 'primary_attribute_value_id', 'Mailing ID', 'bigint') }} as mailing_id,
    {{ activity_primary(groups.email, 'primary_attribute_value', 'Mailing', 'text') }} as mailing_name,
    {{ activity_attribute(groups.email, 'Campaign Run ID', 'bigint') }} as campaign_run_id,
    {{ activity_attribute(groups.email, 'Step ID', 'bigint') }} as email_step_id,
    {{ activity_attribute(groups.email, 'Choice Number', 'bigint') }} as email_choice_number,
    {{ activity_attribute([11], 'Link') }} as email_link,
    {{ activity_attribute([11], 'Link ID', 'bigint') }} as email_link_id,
    {{ activity_attribute(opened, 'Device') }} as device,
    {{ activity_attribute(opened, 'Platform') }} as platform,
    {{ activity_attribute(opened, 'Is Mobile Device', 'boolean') }} as is_mobile_device,
    {{ activity_attribute(opened, 'Is Bot Activity', 'boolean') }} as is_bot_activity,

    -- form fill
    {{ activity_primary(groups.form, 'primary_attribute_value_id', 'Webform ID', 'bigint') }} as form_id,
    {{ activity_primary(groups.form, 'primary_attribute_value', 'Webform', 'text') }} as form_name,

    -- web page visit (1), form fill (2), link click (3)
    case
        when activities.activity_type_id = 1
            then {{ activity_primary([1], 'primary_attribute_value_id', 'Webpage ID', 'bigint') }}
        else {{ activity_attribute([2, 3], 'Webpage ID', 'bigint') }}
    end as webpage_id,
    case
        when activities.activity_type_id = 1
            then coalesce({{ activity_attribute([1], 'Webpage URL') }}, activities.primary_attribute_value)
        else {{ activity_attribute([2, 3], 'Webpage URL') }}
    end as webpage_url,
    {{ activity_attribute(visited, 'Referrer URL') }} as referrer_url,
    {{ activity_attribute(visited, 'Query Parameters') }} as query_parameters,
    {{ activity_attribute(visited, 'Client IP Address') }} as client_ip_address,
    {{ activity_attribute(visited + opened, 'User Agent') }} as user_agent,

    -- score change
    {{ activity_attribute(groups.score, 'Change Value', 'bigint') }} as score_change,
    {{ activity_attribute(groups.score, 'Old Value', 'bigint') }} as score_old_value,
    {{ activity_attribute(groups.score, 'New Value', 'bigint') }} as score_new_value,
    {{ activity_attribute(groups.score, 'Reason') }} as score_reason,

    activities.attributes,
    activities._partition_key,
    activities._export_id,
    activities._loaded_at
from activities
left join activity_types
    on activity_types.type_id = activities.activity_type_id
left join merges
    on merges.merged_lead_id = activities.lead_id
