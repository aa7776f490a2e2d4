"""Ingest: MQTT to the time-series store. Owns the database schema and its migrations."""
