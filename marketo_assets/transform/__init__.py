"""dbt machinery without Dagster: the dbt project's manifest, prepared once (`manifest`)."""
