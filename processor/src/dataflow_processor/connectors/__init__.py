"""Connectors: interfaces (``base``), the registry, and the in-process implementation (``memory``).

Each technology holds its source and sink side by side and registers through ``registry``:
``kafka.py`` and ``nessie.py`` as one module each; ``postgresql/`` and ``trino/`` as packages split
by concern (``types``, ``table``, ``client``, ``sink``, ``source``). The polling sources
(PostgreSQL, Trino, Nessie) share ``polling.PollingSource`` and its checkpoint record
(``checkpoint``); every table connector reads and writes values by the rules in ``values``.
"""
