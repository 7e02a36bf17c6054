"""Benchmarks: `python -m bench.run [--quick]` (`make bench`, `make bench-quick`).

Every figure is measured side by side with a reference in the same run (this machine is shared
and noisy, so absolute times alone mean little); see docs/PERFORMANCE.md.
"""
