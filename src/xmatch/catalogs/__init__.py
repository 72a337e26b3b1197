"""Bundled catalog specs (``*.toml``) and the small data files they load by default."""
