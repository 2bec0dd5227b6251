"""Jinja templates of the model and dataset cards (package data, loaded by path)."""

__all__ = []
