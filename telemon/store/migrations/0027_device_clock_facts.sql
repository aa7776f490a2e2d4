-- Issue 19, what the gateway knows of each device's clock (docs/time.md): whether it keeps
-- standard time all year (learnt in summer; false: it follows DST), and the zone and DST offset
-- it declares in its Local Time Information (0x2A0F), in minutes. NULL: not known, or reported
-- by an older gateway, which sends none; the equipment page and the device card say them.
ALTER TABLE devices
    ADD COLUMN clock_ignores_dst boolean,
    ADD COLUMN clock_zone_min smallint CHECK (clock_zone_min BETWEEN -720 AND 840),
    ADD COLUMN clock_dst_min smallint CHECK (clock_dst_min IN (0, 30, 60, 120));
