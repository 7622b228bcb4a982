"""Benchmarks the `crm-warehouse bench` command runs (one module per concern)."""
