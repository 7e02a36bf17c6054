-- One row per (smart list, lead) from the latest export of each list.
{{ select_marketo_source(
    'smart_list_members',
    [("_list_id", "list_id", "bigint")] + marketo_member_fields() + marketo_lineage_columns()
) }}
