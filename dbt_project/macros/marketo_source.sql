{#-
  Staging models read the raw Marketo tables through `select_marketo_source`, which
  - still declares the dependency with `source()` (lineage, Dagster asset keys);
  - selects each wanted column by its raw name when the table has it, typed and with empty
    strings turned into NULL, and `cast(null as <type>)` when it does not (a subscription
    without that field, or an export restricted to fewer fields);
  - returns an empty relation with the same columns when the raw table does not exist yet
    (a fresh database holds only `marketo.leads` until list and change exports run).
  So every model builds and tests on any subset of the raw layer; a missing table just means
  no rows. The check happens when the model is built (`execute`): the Dagster automation
  rebuilds staging after every raw load, so a table that appears is picked up then.

  `columns` is a list of (raw name, model column, type). Types are DuckDB types (spelled for
  the target by `marketo_sql_type`, macros/cross_db.sql), plus
  `text` (VARCHAR, trimmed, '' -> NULL) and `email` (like text, lower-cased).
-#}
{% macro select_marketo_source(table_name, columns) -%}
    {%- set relation = source('marketo', table_name) -%}
    {%- set found = none -%}
    {%- if execute -%}
        {%- set found = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier
        ) -%}
    {%- endif -%}
    {%- set present = [] -%}
    {%- if found is not none -%}
        {%- for column in adapter.get_columns_in_relation(found) -%}
            {%- do present.append(column.name | lower) -%}
        {%- endfor -%}
    {%- endif %}
select
    {%- for raw_name, name, type in columns %}
    {{ marketo_typed_column(raw_name, type, (raw_name | lower) in present) }} as {{ name }}
    {{- "," if not loop.last }}
    {%- endfor %}
{%- if found is not none %}
from {{ relation }}
{%- else %}
-- {{ relation }} does not exist yet: same columns, no rows
from (select 1) as missing_source
where false
{%- endif %}
{%- endmacro %}


{% macro marketo_typed_column(raw_name, type, present) -%}
    {%- set column = adapter.quote(raw_name) -%}
    {%- if type == 'text' -%}
        {%- if present -%} nullif(trim(cast({{ column }} as varchar)), '')
        {%- else -%} cast(null as varchar) {%- endif -%}
    {%- elif type == 'email' -%}
        {%- if present -%} nullif(lower(trim(cast({{ column }} as varchar))), '')
        {%- else -%} cast(null as varchar) {%- endif -%}
    {%- elif present -%}
        cast({{ column }} as {{ marketo_sql_type(type) }})
    {%- else -%}
        cast(null as {{ marketo_sql_type(type) }})
    {%- endif -%}
{%- endmacro %}


{#- Lineage columns the loaders add to every lead-shaped table. -#}
{% macro marketo_lineage_columns() -%}
    {{ return([
        ("_partition_key", "_partition_key", "varchar"),
        ("_export_id", "_export_id", "varchar"),
        ("_loaded_at", "_loaded_at", "timestamptz"),
    ]) }}
{%- endmacro %}
