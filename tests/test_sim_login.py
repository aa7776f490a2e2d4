"""The broker login of `telemon sim` is each simulated gateway's own, or refused."""

import pytest

from console.sim_login import FleetLogin, FleetLoginError, fleet_login


def test_a_gateways_login_serves_that_one_gateway_without_leaving_the_url():
    login = fleet_login("mqtts://gw-0001:s3cret@broker.example.org:8883", ["gw-0001"])
    assert login == FleetLogin("mqtts://broker.example.org:8883", {"gw-0001": "s3cret"})


def test_a_broker_without_logins_lets_every_gateway_connect_as_itself():
    login = fleet_login("mqtt://127.0.0.1:1883", ["gw-0001", "gw-0002"])
    assert login == FleetLogin("mqtt://127.0.0.1:1883", {})


@pytest.mark.parametrize(
    ("url", "gateways"),
    [
        ("mqtt://gw-sim-0001:s3cret@mqtt:1883", ["gw-0001"]),  # compose before issue 16
        ("mqtt://gw-0001:s3cret@mqtt:1883", ["gw-0001", "gw-0002"]),  # gw-0002 would be dropped
        ("mqtt://ingest:s3cret@mqtt:1883", ["gw-0001"]),
    ],
)
def test_a_login_that_cannot_publish_for_every_gateway_is_refused(url, gateways):
    with pytest.raises(FleetLoginError, match="publish only as itself") as refused:
        fleet_login(url, gateways)
    assert "s3cret" not in str(refused.value)
