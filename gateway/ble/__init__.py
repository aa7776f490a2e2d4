"""Which Bluetooth stack the gateway talks through, chosen by configuration.

The gateway's code is plain bleak; a *backend* supplies the bleak scanner and client classes
(None: bleak's platform default, BlueZ on the Raspberry Pi), the way to power-cycle the radio
and the way to release it at shutdown. Backends are found by name in the ``telemon.ble_backends``
entry point group (pyproject.toml): ``bluez`` (`gateway.ble.bluez`) here, ``bumble`` (the
simulated radio of the demo and the tests) in ``firmware_sim.ble``, which the gateway never
imports.
"""
