"""argon2 off the shared thread pool: password work in a small pool of its own, with a bound.

Every login costs one argon2 run (64 MiB, ~0.2 s of CPU), and anyone can ask for one. In the
app's shared thread pool, 40 parallel failed logins held every thread and a signed-in nurse's
next page waited seconds. Here at most ``workers`` run at once and ``waiting`` more may queue;
beyond that a login is answered "busy, try again" at once, with no argon2 run.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from dashboard import accounts

T = TypeVar("T")

# argon2-cffi hashes with 4 lanes (threads) each: one check per two cores already fills them.
WORKERS = max(1, (os.cpu_count() or 2) // 2)
# Logins that may wait for a worker: at ~0.2 s a check, a few seconds' queue at most.
WAITING_PER_WORKER = 16


class PasswordChecksBusy(Exception):
    """Every worker is busy and the queue is full: answered 503, try again."""


class PasswordChecks:
    """The dashboard's argon2 pool (``app.state.password_checks``)."""

    def __init__(self, workers: int = WORKERS, waiting: int = WORKERS * WAITING_PER_WORKER):
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers + waiting)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._counted = threading.Lock()
        # Read by the tests and worth a look under attack: argon2 runs done, logins turned away.
        self.verifications = 0
        self.turned_away = 0

    @contextmanager
    def admission(self) -> Iterator[None]:
        """A place in the pool for one login (or password change), or PasswordChecksBusy now."""
        if not self._slots.acquire(blocking=False):
            with self._counted:
                self.turned_away += 1
            raise PasswordChecksBusy
        try:
            yield
        finally:
            self._slots.release()

    async def verify(self, password_hash: str, password: str) -> bool:
        """One argon2 verification (``accounts.verify_password``) in the pool."""
        verified = await self.run(accounts.verify_password, password_hash, password)
        with self._counted:
            self.verifications += 1
        return verified

    async def run(self, work: Callable[..., T], *args: object) -> T:
        """Password work (a verification, a new hash) in the pool, awaited."""
        return await asyncio.wrap_future(self._pool().submit(work, *args))

    def _pool(self) -> ThreadPoolExecutor:
        # Made on first use and again after close(): an app's lifespan may run more than once.
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2")
            return self._executor

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
