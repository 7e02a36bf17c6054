"""The project's raw assets for the settings of this process's environment, built as the
definitions build them (`marketo_assets.defs.build`): tests materialize these directly."""

from functools import cache

import dagster as dg

from marketo_assets.defs.dbt import dbt_models as build_dbt_models
from marketo_assets.defs.deleted_leads import deleted_leads_asset
from marketo_assets.defs.leads import lead_assets, lead_change_assets
from marketo_assets.defs.lists import list_assets
from marketo_assets.defs.programs import program_assets
from marketo_assets.settings import load_list_settings, load_settings

SETTINGS = load_settings()
LIST_SETTINGS = load_list_settings()

lead_export_files, leads = lead_assets(SETTINGS)
lead_change_export_files, lead_changes = lead_change_assets(SETTINGS)
static_list_export_files, static_list_members = list_assets("static", LIST_SETTINGS)
smart_list_export_files, smart_list_members = list_assets("smart", LIST_SETTINGS)
deleted_leads = deleted_leads_asset(SETTINGS)
program_member_export_files, program_members = program_assets(LIST_SETTINGS)


@cache
def dbt_models() -> dg.AssetsDefinition:
    """The dbt models (parses the dbt project first if its manifest is stale)."""
    return build_dbt_models(SETTINGS)
