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


{#- `relationships`, once the parent exists: a membership model can be built before the first
    lead export has created `dim_leads`. Same SQL as dbt's own test otherwise. -#}
{% test relationships_when_built(model, column_name, to, field) %}
    {%- if execute and load_relation(to) is none %}
select null as {{ column_name }} from (select 1) as nothing where false
    {%- else %}
{{ default__test_relationships(model, column_name, to, field) }}
    {%- endif %}
{% endtest %}
