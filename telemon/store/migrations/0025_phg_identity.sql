-- Issue 19, the gateway's PHG identity and its devices' (docs/mqtt.md, "status"): the EUI-64
-- system ids, written as the HL7 PHD IG writes them (telemon.system_id), NULL until reported.
ALTER TABLE gateways
    ADD COLUMN system_id text CHECK (system_id ~ '^[0-9A-F]{2}(-[0-9A-F]{2}){7}$');

-- A device's manufacturer, model and serial number are the kit's (dashboard/kit.py, entered by
-- an admin); Device Information fills those left empty and never replaces one. The serial the
-- device itself reports is kept beside the kit's: when they differ, the device in the home is
-- not the one the kit records, and the equipment page says so. Firmware is the device's alone.
ALTER TABLE devices
    ADD COLUMN system_id text CHECK (system_id ~ '^[0-9A-F]{2}(-[0-9A-F]{2}){7}$'),
    ADD COLUMN reported_serial_number text,
    ADD COLUMN identity_reported_at timestamptz;
