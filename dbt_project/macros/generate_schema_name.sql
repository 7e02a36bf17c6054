{#- Models go into exactly the schema they configure (`staging`, `marts`, `reporting`), not
    `main_staging`: analysts query `marts.dim_leads`. The raw loaders own the `marketo` schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
