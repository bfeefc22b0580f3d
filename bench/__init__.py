"""streamagg benchmark: `python -m bench` (see BENCHMARKS.md for the figures and how to rerun)."""
