"""Benchmarks of syncctl against dlt, run by `make bench` (`python -m bench.run`); never part of the tests."""
