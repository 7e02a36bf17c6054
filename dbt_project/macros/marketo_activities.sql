{#-
  Unpacking activity attributes (a JSON object: attribute name -> value) into typed columns.
  Standard activity types have the same ids in every Marketo subscription (the catalog,
  `marketo.activity_types`, names them); fct_activities unpacks the common ones.
-#}
{% macro marketo_activity_groups() -%}
    {{ return({
        'web': [1, 3],
        'form': [2],
        'email': [6, 7, 8, 9, 10, 11, 27],
        'score': [22],
        'merge': [32],
    }) }}
{%- endmacro %}


{#- The attribute `name` of activities whose type is one of `type_ids`, as `type` (`text`:
    trimmed, '' -> NULL), else NULL. A missing key or a value that does not convert is NULL. -#}
{% macro activity_attribute(type_ids, name, type='text', column='attributes') -%}
    {%- set value = column ~ " ->> '" ~ name ~ "'" -%}
    case when activity_type_id in ({{ type_ids | join(', ') }}) then
        {%- if type == 'text' %} nullif(trim({{ value }}), '')
        {%- else %} {{ marketo_try_cast(value, type) }}
        {%- endif %} end
{%- endmacro %}


{#- The primary attribute's id or value (its own columns in the export) for `type_ids`, else
    the attribute `fallback` (an export that carries it among the attributes). -#}
{% macro activity_primary(type_ids, column, fallback, type) -%}
    case when activity_type_id in ({{ type_ids | join(', ') }}) then coalesce(
        {{ column }},
        {%- if type == 'text' %} nullif(trim(attributes ->> '{{ fallback }}'), '')
        {%- else %} {{ marketo_try_cast("attributes ->> '" ~ fallback ~ "'", type) }}
        {%- endif %}
    ) end
{%- endmacro %}
