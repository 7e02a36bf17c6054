{#-
  The few SQL spellings that differ between DuckDB (the default target) and PostgreSQL
  (target `postgres`), behind adapter dispatch: `marketo_sql_type('double')` is `double` on
  DuckDB and `double precision` on PostgreSQL. Everything else in the models is plain SQL that
  both run (no `union by name`, `* exclude`, `qualify` or `group by all`).
-#}
{% macro marketo_sql_type(type) -%}
    {{ return(adapter.dispatch('marketo_sql_type', 'marketo')(type)) }}
{%- endmacro %}

{% macro default__marketo_sql_type(type) -%}
    {{ return(type) }}
{%- endmacro %}

{% macro postgres__marketo_sql_type(type) -%}
    {%- set spelled = {'double': 'double precision'} -%}
    {{ return(spelled.get(type | lower, type)) }}
{%- endmacro %}
