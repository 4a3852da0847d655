"""Masked language model (fixture for the site tests: never run)."""
