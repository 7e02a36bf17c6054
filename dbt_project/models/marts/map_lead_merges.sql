-- Which lead each merged-away lead id is now: one row per merged-away id.
--
-- Merges are the "Merge Leads" activities (type 32): `lead_id` is the lead that survived and
-- `attributes."Merge IDs"` the JSON array of the ids merged into it. Chains are followed: when
-- lead 1 was merged into 2 and 2 later into 3, both 1 and 2 resolve to 3. An id merged away
-- twice (not expected: a merged-away lead no longer exists) keeps its latest merge; a cycle
-- (impossible in Marketo) stops where it would come back to the id itself.

with recursive activities as (
    {{ select_built('stg_marketo__activities', [
        ("marketo_guid", "varchar"),
        ("lead_id", "bigint"),
        ("activity_date", "timestamptz"),
        ("activity_type_id", "integer"),
        ("attributes", "json"),
    ]) | indent(4) }}
),

merge_activities as (
    select marketo_guid, lead_id, activity_date, attributes
    from activities
    where activity_type_id = 32 and lead_id is not null
),

merged_ids as (
    select
        {{ marketo_try_cast('merged.value', 'bigint') }} as merged_lead_id,
        merge_activities.lead_id as merged_into_lead_id,
        merge_activities.activity_date as merged_at,
        merge_activities.marketo_guid as merge_activity_guid
    from merge_activities,
        {{ marketo_json_array_elements("merge_activities.attributes -> 'Merge IDs'", 'merged') | indent(8) }}
),

ranked as (
    select
        merged_ids.*,
        row_number() over (
            partition by merged_lead_id
            order by merged_at desc nulls last, merge_activity_guid desc
        ) as merge_rank
    from merged_ids
    where merged_lead_id is not null and merged_lead_id <> merged_into_lead_id
),

merges as (
    select merged_lead_id, merged_into_lead_id, merged_at, merge_activity_guid
    from ranked
    where merge_rank = 1
),

chains as (
    select merged_lead_id, merged_into_lead_id as surviving_lead_id, 1 as merge_hops
    from merges
    union all
    select chains.merged_lead_id, merges.merged_into_lead_id, chains.merge_hops + 1
    from chains
    join merges on merges.merged_lead_id = chains.surviving_lead_id
    where merges.merged_into_lead_id <> chains.merged_lead_id and chains.merge_hops < 100
),

resolved as (
    select
        merged_lead_id,
        surviving_lead_id,
        merge_hops,
        row_number() over (partition by merged_lead_id order by merge_hops desc) as hop_rank
    from chains
)

select
    merges.merged_lead_id,
    resolved.surviving_lead_id,
    merges.merged_into_lead_id,
    merges.merged_at,
    merges.merge_activity_guid,
    resolved.merge_hops
from merges
join resolved
    on resolved.merged_lead_id = merges.merged_lead_id
    and resolved.hop_rank = 1
