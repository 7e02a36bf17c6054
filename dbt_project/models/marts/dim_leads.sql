-- The current state of every lead: one row per lead id.
--
-- A lead can be seen several times: once in the full export of its creation window and once per
-- day it changed in the incremental exports. The newest version wins: latest Marketo
-- `updatedAt`, then the latest export (`_loaded_at`), then the incremental export over the
-- full one (it was asked for *because* the lead changed), then the export id (deterministic).
-- A staging table not built yet (no change export so far) contributes no versions.
--
-- Merged and deleted leads (docs/DBT.md, "Merged and deleted leads"):
-- - a merged-away id (map_lead_merges) is not a lead of its own any more: it has no row; its
--   activities and memberships carry `surviving_lead_id`, the lead it resolves to;
-- - a deleted lead (stg_marketo__deleted_leads) keeps its row with `is_deleted` and
--   `deleted_at`; one never seen in a lead export gets a row of its own with only its id
--   (`_source_table` = 'deleted_leads'). `dim_leads_active` leaves deleted leads out.
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

merged_away as (
    {{ select_built('map_lead_merges', [("merged_lead_id", "bigint")]) | indent(4) }}
),

deletions as (
    {{ select_built('stg_marketo__deleted_leads', [("lead_id", "bigint"), ("deleted_at", "timestamptz")]) | indent(4) }}
),

deleted as (
    select lead_id, max(deleted_at) as deleted_at
    from deletions
    where lead_id is not null
    group by lead_id
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
),

latest as (
    select * from ranked where _version_rank = 1
)

select
    coalesce(latest.lead_id, deleted.lead_id) as lead_id,
    {%- for column in lead_columns if column != 'lead_id' %}
    latest.{{ column }},
    {%- endfor %}
    deleted.lead_id is not null as is_deleted,
    deleted.deleted_at,
    coalesce(latest._source_table, 'deleted_leads') as _source_table,
    latest._partition_key,
    latest._export_id,
    latest._loaded_at,
    coalesce(latest._versions_seen, 0) as _versions_seen
from latest
full outer join deleted
    on deleted.lead_id = latest.lead_id
where not exists (
    select 1 from merged_away
    where merged_away.merged_lead_id = coalesce(latest.lead_id, deleted.lead_id)
)
