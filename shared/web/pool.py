"""A bounded pool for CPU-heavy blocking work (password hashing): ``workers`` threads of
its own, and at most ``queue`` calls waiting for one. The event loop only awaits; a call
beyond the bound is refused at once (``Overloaded``, 503 with ``Retry-After``), so that
overload never piles up requests behind work the service cannot do in time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shared.kernel.errors import Overloaded

T = TypeVar("T")


class BoundedPool:
    """Runs blocking calls in ``workers`` threads named ``name``; ``busy()`` is raised
    instead of queueing a call when ``workers + queue`` are running or waiting."""

    def __init__(self, name: str, workers: int, queue: int, busy: Callable[[], Overloaded]) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"pool {name} needs a worker or more and a queue of 0 or more")
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self._busy = busy
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name)

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread, awaited; refused when the pool is full."""
        if not self._slots.acquire(blocking=False):
            raise self._busy()
        try:
            return await asyncio.wrap_future(self._executor.submit(call))
        finally:
            self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
