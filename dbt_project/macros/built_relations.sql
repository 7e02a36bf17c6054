{#-
  The relations of `model_names` that exist in the database, in order.

  A mart reads staging tables through this so that it builds before all of them exist: each
  staging table is created by the first build after its raw table is loaded (the Dagster
  automation builds a model when a raw table it reads was loaded), and list or change exports
  may never run in a given deployment. `ref()` is called for every name, so lineage and build
  order stay complete; only the SQL leaves out what is not built yet.
-#}
{% macro built_relations(model_names) -%}
    {%- set found = [] -%}
    {%- for name in model_names -%}
        {%- set relation = ref(name) -%}
        {%- if execute and load_relation(relation) is not none -%}
            {%- do found.append(relation) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}


{#- `select` of typed NULL columns and no rows. `columns`: (raw name, column, type) triples
    as for `select_marketo_source`. -#}
{% macro empty_relation(columns) -%}
select
    {%- for raw_name, name, type in columns %}
    {{ marketo_typed_column(raw_name, type, false) }} as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from (select 1) as nothing
where false
{%- endmacro %}


{#- `relationships`, once both sides exist: a membership model can be built before the first
    lead export has created `dim_leads`, and building `dim_leads` alone also runs the tests of
    the facts that point at it, built or not. Same SQL as dbt's own test otherwise. -#}
{% test relationships_when_built(model, column_name, to, field) %}
    {%- if execute and (load_relation(to) is none or load_relation(model) is none) %}
select null as {{ column_name }} from (select 1) as nothing where false
    {%- else %}
{{ default__test_relationships(model, column_name, to, field) }}
    {%- endif %}
{% endtest %}


{#- `select <columns> from <model>` when the model is built, else the same columns, typed, and
    no rows. `columns`: (column, type) pairs, DuckDB types (`marketo_sql_type`). -#}
{% macro select_built(model_name, columns) -%}
    {%- set found = built_relations([model_name]) -%}
    {%- if found %}
select {{ columns | map(attribute=0) | join(', ') }}
from {{ found[0] }}
    {%- else %}
select
    {%- for name, type in columns %}
    cast(null as {{ marketo_sql_type(type) }}) as {{ name }}{{ "," if not loop.last }}
    {%- endfor %}
from (select 1) as nothing
where false
    {%- endif %}
{%- endmacro %}
