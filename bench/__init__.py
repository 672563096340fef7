"""Benchmarks: each prints the platform's figure, a baseline measured in the same run, and their ratio."""
