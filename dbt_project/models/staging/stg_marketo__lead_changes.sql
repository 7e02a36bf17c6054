-- One row per lead and daily partition of the incremental exports (`updatedAt` filter).
{{ select_marketo_source('lead_changes', marketo_lead_fields() + marketo_lineage_columns()) }}
