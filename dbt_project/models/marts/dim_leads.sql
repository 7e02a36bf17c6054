-- The current state of every lead: one row per lead id.
--
-- A lead can be seen several times: once in the full export of its creation window and once per
-- day it changed in the incremental exports. The newest version wins: latest Marketo
-- `updatedAt`, then the latest export (`_loaded_at`), then the incremental export over the
-- full one (it was asked for *because* the lead changed), then the export id (deterministic).
-- A staging table not built yet (no change export so far) contributes no versions.
-- Plain SQL (explicit column lists, a ranked subquery): runs on DuckDB and PostgreSQL.

{%- set sources = {'stg_marketo__leads': 'leads', 'stg_marketo__lead_changes': 'lead_changes'} %}
{%- set built = built_relations(sources.keys() | list) %}
{%- set lead_columns = [] %}
{%- for field in marketo_lead_fields() %}{% do lead_columns.append(field[1]) %}{% endfor %}
{%- set lineage = ['_partition_key', '_export_id', '_loaded_at'] %}

with versions as (
{%- for relation in built %}
    select
        {{ (lead_columns + lineage) | join(',\n        ') }},
        '{{ sources[relation.identifier] }}' as _source_table
    from {{ relation }}
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- else %}
    select *, cast(null as varchar) as _source_table from (
        {{ empty_relation(marketo_lead_fields() + marketo_lineage_columns()) | indent(8) }}
    ) as no_versions
{%- endfor %}
),

ranked as (
    select
        versions.*,
        count(*) over (partition by lead_id) as _versions_seen,
        row_number() over (
            partition by lead_id
            order by
                updated_at desc nulls last,
                _loaded_at desc nulls last,
                _source_table = 'lead_changes' desc,
                _export_id desc nulls last
        ) as _version_rank
    from versions
    where lead_id is not null
)

select
    {{ lead_columns | join(',\n    ') }},
    _source_table,
    _partition_key,
    _export_id,
    _loaded_at,
    _versions_seen
from ranked
where _version_rank = 1
