"""The store every service shares: the schema (ordered SQL migrations and the runner that applies
them), the storage backend (TimescaleDB or native partitions) and its policies, and the NOTIFY
channel by which ingest tells the alerts engine of new observations.

Each service keeps its own queries; what they all rely on about the tables lives here.
"""
