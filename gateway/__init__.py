"""Home gateway: reads paired BLE health devices, decodes GATT, durable outbox, MQTT uplink."""
