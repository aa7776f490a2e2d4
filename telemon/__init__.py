"""Shared contract of the telemonitoring platform.

Every component speaks through what is defined here: the metric catalogue, the
``Observation`` model, the MQTT topics and payload schema, the findings, the settings, and the
store every service shares (``telemon.store``: schema, storage backend, NOTIFY channel). It
imports nothing of ours; the layers above it are checked by import-linter (pyproject.toml).
"""

__version__ = "0.1.0"
