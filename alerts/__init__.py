"""Alerts engine: vectorised rules over every patient, alert lifecycle, SMS to GP and centre."""
