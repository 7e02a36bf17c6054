-- One row per activity (`marketo.activities`, one partition per activityDate window).
-- `attributes` stays JSON (attribute name -> value); fct_activities unpacks the common ones.
{{ select_marketo_source('activities', [
    ("marketoGUID", "marketo_guid", "text"),
    ("leadId", "lead_id", "bigint"),
    ("activityDate", "activity_date", "timestamptz"),
    ("activityTypeId", "activity_type_id", "integer"),
    ("campaignId", "campaign_id", "bigint"),
    ("primaryAttributeValueId", "primary_attribute_value_id", "bigint"),
    ("primaryAttributeValue", "primary_attribute_value", "text"),
    ("attributes", "attributes", "json"),
    ("actionResult", "action_result", "text"),
] + marketo_lineage_columns()) }}
