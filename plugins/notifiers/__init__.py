"""Bundled notifiers, one module each."""
