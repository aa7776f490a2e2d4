"""Simulated BLE health devices speaking the real GATT protocols, and the patients wearing them."""
