{#-
  Marketo lead fields -> staging columns: (REST name, snake_case column, type). Columns are
  the REST names in snake_case, without the custom-field suffix `__c`; `id` becomes `lead_id`.
  REST names are the raw column names (always: columnHeaderNames only renames the export
  file's headers, never the loaded columns). Standard fields
  first, then the subscription's custom fields (`__c`). A field missing from an export
  becomes a NULL column; a field exported but not listed here is not modelled: add a line.
-#}
{% macro marketo_lead_fields() -%}
    {{ return([
        ("id", "lead_id", "bigint"),
        ("email", "email", "email"),
        ("firstName", "first_name", "text"),
        ("lastName", "last_name", "text"),
        ("middleName", "middle_name", "text"),
        ("salutation", "salutation", "text"),
        ("title", "title", "text"),
        ("company", "company", "text"),
        ("phone", "phone", "text"),
        ("mobilePhone", "mobile_phone", "text"),
        ("address", "address", "text"),
        ("city", "city", "text"),
        ("state", "state", "text"),
        ("postalCode", "postal_code", "text"),
        ("country", "country", "text"),
        ("website", "website", "text"),
        ("industry", "industry", "text"),
        ("leadSource", "lead_source", "text"),
        ("leadStatus", "lead_status", "text"),
        ("leadScore", "lead_score", "bigint"),
        ("relativeScore", "relative_score", "bigint"),
        ("annualRevenue", "annual_revenue", "decimal(38,18)"),
        ("numberOfEmployees", "number_of_employees", "bigint"),
        ("probability", "probability", "decimal(38,18)"),
        ("urgency", "urgency", "decimal(38,18)"),
        ("unsubscribed", "unsubscribed", "boolean"),
        ("doNotCall", "do_not_call", "boolean"),
        ("dateOfBirth", "date_of_birth", "date"),
        ("mktoAcquisitionDate", "mkto_acquisition_date", "timestamptz"),
        ("createdAt", "created_at", "timestamptz"),
        ("updatedAt", "updated_at", "timestamptz"),
        ("sfdcLeadOwnerId", "sfdc_lead_owner_id", "text"),
        ("externalCompanyId", "external_company_id", "text"),
        ("cookies", "cookies", "text"),
        ("personTimeZone", "person_time_zone", "text"),
        ("inferredCountry", "inferred_country", "text"),
        ("customerTier__c", "customer_tier", "text"),
        ("npsScore__c", "nps_score", "bigint"),
        ("lastProductSeen__c", "last_product_seen", "text"),
        ("churnRisk__c", "churn_risk", "decimal(38,18)"),
        ("contractValue__c", "contract_value", "decimal(38,18)"),
        ("isPartner__c", "is_partner", "boolean"),
        ("renewalDate__c", "renewal_date", "date"),
        ("notes__c", "notes", "text"),
    ]) }}
{%- endmacro %}


{#- The fields list exports carry by default (docs/ARCHITECTURE.md, "Tables and schema changes"). -#}
{% macro marketo_member_fields() -%}
    {%- set wanted = ["id", "email", "firstName", "lastName", "company", "createdAt", "updatedAt"] -%}
    {%- set fields = [] -%}
    {%- for field in marketo_lead_fields() if field[0] in wanted -%}
        {%- do fields.append(field) -%}
    {%- endfor -%}
    {{ return(fields) }}
{%- endmacro %}
