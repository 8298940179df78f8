"""Models built from lavin_fast's ops, loading the released LaVin-DiT weights."""
