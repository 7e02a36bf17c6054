-- One row per activity type of the subscription's catalog (`marketo.activity_types`).
with activity_types as (
    {{ select_marketo_source('activity_types', [
        ("id", "activity_type_id", "integer"),
        ("name", "activity_type_name", "text"),
        ("description", "description", "text"),
        ("primaryAttribute", "primary_attribute", "json"),
        ("attributes", "attributes", "json"),
        ("_loaded_at", "_loaded_at", "timestamptz"),
    ]) | indent(4) }}
)

select
    activity_type_id,
    activity_type_name,
    description,
    primary_attribute ->> 'name' as primary_attribute_name,
    primary_attribute ->> 'dataType' as primary_attribute_data_type,
    attributes,
    _loaded_at
from activity_types
