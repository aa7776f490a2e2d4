"""Fixtures for the bumble backend tests.

Each test gets a fresh `LocalLink` made the default radio, so plain
``BleakScanner(backend=BumbleScanner)`` / ``BleakClient(..., backend=BumbleClient)``
talk to the peripherals created on it, and nothing leaks between tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest_asyncio
from bumble.link import LocalLink

from .peripherals import SimulatedPeripheral

PeripheralFactory = Callable[..., Awaitable[SimulatedPeripheral]]


@pytest_asyncio.fixture(loop_scope="function")
async def make_peripheral(link: LocalLink) -> AsyncIterator[PeripheralFactory]:
    started: list[SimulatedPeripheral] = []

    async def make(name: str, **kwargs: int) -> SimulatedPeripheral:
        peripheral = SimulatedPeripheral(link, name, **kwargs)
        await peripheral.start()
        started.append(peripheral)
        return peripheral

    yield make
    for peripheral in started:
        await peripheral.stop(link)


@pytest_asyncio.fixture(loop_scope="function")
async def peripheral(make_peripheral: PeripheralFactory) -> SimulatedPeripheral:
    return await make_peripheral("Oxi-1")
