"""Shared contract of the telemonitoring platform.

Every component speaks through what is defined here: the metric catalogue, the
``Observation`` model, the MQTT topics and payload schema, and the settings.
"""

__version__ = "0.1.0"
