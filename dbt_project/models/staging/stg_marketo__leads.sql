-- One row per lead from the full exports (`marketo.leads`, one partition per createdAt window).
{{ select_marketo_source('leads', marketo_lead_fields() + marketo_lineage_columns()) }}
