-- One row per deleted lead (`marketo.deleted_leads`, one partition per UTC day of deletion).
{{ select_marketo_source('deleted_leads', [
    ("id", "activity_id", "bigint"),
    ("leadId", "lead_id", "bigint"),
    ("deletedAt", "deleted_at", "timestamptz"),
] + marketo_lineage_columns()) }}
