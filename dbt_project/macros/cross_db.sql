{#-
  The few SQL spellings that differ between DuckDB (the default target) and PostgreSQL
  (target `postgres`), behind adapter dispatch: `marketo_sql_type('double')` is `double` on
  DuckDB and `double precision` on PostgreSQL, `json` is `jsonb` there. JSON attributes are read
  with `->>` (`attributes ->> 'Mailing ID'`, a key on both). Everything else in the models is
  plain SQL that both run (no `union by name`, `* exclude`, `qualify` or `group by all`).
-#}
{% macro marketo_sql_type(type) -%}
    {{ return(adapter.dispatch('marketo_sql_type', 'marketo')(type)) }}
{%- endmacro %}

{% macro default__marketo_sql_type(type) -%}
    {{ return(type) }}
{%- endmacro %}

{% macro postgres__marketo_sql_type(type) -%}
    {%- set spelled = {'double': 'double precision', 'json': 'jsonb'} -%}
    {{ return(spelled.get(type | lower, type)) }}
{%- endmacro %}


{#- `expr` (text) as `type`, or NULL when it does not convert (DuckDB's `try_cast`): one odd
    value in a JSON attribute must not fail the whole build. -#}
{% macro marketo_try_cast(expr, type) -%}
    {{ return(adapter.dispatch('marketo_try_cast', 'marketo')(expr, type)) }}
{%- endmacro %}

{% macro default__marketo_try_cast(expr, type) -%}
    try_cast({{ expr }} as {{ type }})
{%- endmacro %}

{% macro postgres__marketo_try_cast(expr, type) -%}
    {%- set kind = type | lower -%}
    {%- if kind in ('integer', 'bigint', 'smallint') -%}
        case when trim({{ expr }}) ~ '^[+-]?[0-9]{1,18}$' then cast(trim({{ expr }}) as {{ type }}) end
    {%- elif kind in ('double', 'numeric') or kind.startswith('decimal') -%}
        case when trim({{ expr }}) ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$'
            then cast(trim({{ expr }}) as {{ marketo_sql_type(type) }}) end
    {%- elif kind == 'boolean' -%}
        case lower(trim({{ expr }})) when 'true' then true when 'false' then false end
    {%- else -%}
        cast({{ expr }} as {{ marketo_sql_type(type) }})
    {%- endif -%}
{%- endmacro %}


{#- A FROM item (after a comma) with one text column `value` per element of the JSON array
    `expr`; nothing when `expr` is NULL or not an array. -#}
{% macro marketo_json_array_elements(expr, alias) -%}
    {{ return(adapter.dispatch('marketo_json_array_elements', 'marketo')(expr, alias)) }}
{%- endmacro %}

{% macro default__marketo_json_array_elements(expr, alias) -%}
    (
        select json_extract_string(element.value, '$') as value
        from json_each(
            case when json_type({{ expr }}) = 'ARRAY' then {{ expr }} else cast('[]' as json) end
        ) as element
    ) as {{ alias }}
{%- endmacro %}

{% macro postgres__marketo_json_array_elements(expr, alias) -%}
    jsonb_array_elements_text(
        case when jsonb_typeof({{ expr }}) = 'array' then {{ expr }} else cast('[]' as jsonb) end
    ) as {{ alias }}(value)
{%- endmacro %}
