"""Helpers every function imports as `shared.*`."""
