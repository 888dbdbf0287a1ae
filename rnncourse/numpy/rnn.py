"""Placeholder until this module is written in this session."""

__all__ = []
