"""dbt machinery without Dagster: the dbt project's manifest, prepared once (`manifest`), and
what a build step needs around `dbt build` (`build`)."""
