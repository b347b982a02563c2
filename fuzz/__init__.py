"""Seeded fuzz campaigns over the gate's trust boundary; `python -m fuzz --help`."""
