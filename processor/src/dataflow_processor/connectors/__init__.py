"""Connectors: interfaces (``base``), the registry, and the in-process implementation (``memory``).

Concrete technologies live in one module each (``kafka.py``, ``postgresql.py``, ``trino.py``,
``nessie.py``), holding source and sink side by side, and register through ``registry``.
"""
