"""Embedded datasets: made by code, no files, deterministic by seed, any resolution."""
