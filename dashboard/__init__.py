"""Dashboard: GP view, service-centre triage, patient vitals, FHIR export."""
