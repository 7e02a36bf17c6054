-- One row per Marketo list (static and smart), as last seen by the list sensors.
with lists as (
    {{ select_marketo_source('lists', [
        ("list_type", "list_type", "text"),
        ("list_id", "list_id", "bigint"),
        ("name", "list_name", "text"),
        ("description", "description", "text"),
        ("program_name", "program_name", "text"),
        ("workspace_name", "workspace_name", "text"),
        ("created_at", "created_at", "timestamptz"),
        ("updated_at", "updated_at", "timestamptz"),
        ("partition_key", "partition_key", "varchar"),
        ("_loaded_at", "_loaded_at", "timestamptz"),
    ]) | indent(4) }}
)

select
    lower(list_type) || '-' || list_id as list_key,
    lower(list_type) as list_type,
    list_id,
    list_name,
    description,
    program_name,
    workspace_name,
    created_at,
    updated_at,
    partition_key,
    _loaded_at
from lists
