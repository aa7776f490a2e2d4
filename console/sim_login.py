"""How the simulated gateways of ``telemon sim`` log in to a configured broker.

The shipped ACL lets a gateway publish only under its own id, which is its broker username
(deploy/mosquitto/acl). A login in TELEMON_MQTT_URL is therefore one gateway's: it serves only a
fleet of that one gateway. Any other login would connect and publish, and the broker would drop
every reading without telling anyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telemon.mqtt import BrokerAddress, without_login


class FleetLoginError(ValueError):
    """The broker login cannot carry the simulated gateways' readings; the message says why."""


@dataclass(frozen=True, slots=True)
class FleetLogin:
    broker_url: str  # without a login: each gateway logs in as itself
    gateway_passwords: Mapping[str, str]  # by gateway id


def fleet_login(mqtt_url: str, gateway_ids: Sequence[str]) -> FleetLogin:
    """Each simulated gateway's login, from TELEMON_MQTT_URL.

    Without a login in the URL (a development broker that needs none), every gateway connects
    as itself without a password.
    """
    address = BrokerAddress.parse(mqtt_url)
    bare = without_login(mqtt_url)
    if address.username is None:
        return FleetLogin(bare, {})
    if list(gateway_ids) != [address.username]:
        simulated = ", ".join(gateway_ids[:3]) + (", ..." if len(gateway_ids) > 3 else "")
        raise FleetLoginError(
            f"TELEMON_MQTT_URL logs in as '{address.username}', but the broker lets a gateway "
            f"publish only as itself and the simulated gateways are {simulated}: simulate one "
            f"patient (--patients 1) and log in as its gateway "
            f"'{gateway_ids[0]}' (deploy/mosquitto/make-passwd.sh gateway {gateway_ids[0]})"
        )
    passwords = {} if address.password is None else {address.username: address.password}
    return FleetLogin(bare, passwords)
