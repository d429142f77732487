"""Test functions for benchmarks and tests (not used by the optimizer itself)."""
