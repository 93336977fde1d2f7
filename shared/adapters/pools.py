"""A store that works through one asyncpg pool, made by its ``open()``."""

from __future__ import annotations

import asyncpg


class PooledStore:
    """Holds the pool its subclass's ``open()`` makes; ``close()`` closes it."""

    _pool: asyncpg.Pool | None = None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.describe()}: open() was not called")
        return self._pool

    def describe(self) -> str:
        """What the store is, for the error raised when it is used before ``open()``."""
        return type(self).__name__
