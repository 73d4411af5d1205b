"""Benchmarks: scripts that print `name: value` lines (see BENCHMARKS.md)."""
