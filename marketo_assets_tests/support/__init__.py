"""Helpers shared by the tests: fakes, assets, simulator and Dagster run helpers. Test modules
import from here, never from another test module or a conftest (`unit/test_test_imports.py`)."""
