"""An asyncio program run on its own event loop in a thread, stopped cleanly on request."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundLoop:
    """Runs ``main(stop_event)`` in a daemon thread; :meth:`stop` sets the event and waits."""

    def __init__(
        self, main: Callable[[asyncio.Event], Coroutine[Any, Any, None]], *, name: str
    ) -> None:
        self._main = main
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 20.0) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._started.set()
            await self._main(self._stop)

        try:
            asyncio.run(main())
        except Exception:
            # Said where the operator sees it: a silent thread would leave the demo idle.
            log.exception("%s stopped", self._thread.name)
            self._started.set()
