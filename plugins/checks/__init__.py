"""Bundled checks, one module each."""
