"""Deterministic benchmarks for the scan path: synthetic frames, decoders, second chances."""
