"""Soberana: a data-sovereignty gateway for AI traffic."""

__version__ = "0.1.0"
