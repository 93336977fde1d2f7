"""Attempt budgets: how many password attempts a key (an account, a client address) may
start now. In this process's memory (token buckets), so each process keeps its own.

A key's budget holds ``attempts`` and refills at ``attempts`` per ``window_seconds``. An
attempt takes one from the budget of each of its keys before any work is done, and its
caller gives them back unless it failed: only failed attempts (and those still running)
spend a budget. People who type their password right are never held back; a flood of
wrong ones, or a burst of parallel ones, is refused before it costs a password hash.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Refused:
    """An attempt refused by the budget of ``kind`` (e.g. ``account``) for ``key``."""

    kind: str
    key: str
    retry_after_seconds: int
    first: bool  # the key's first refusal of a window: the one to record, not each of a flood


@dataclass
class _Bucket:
    tokens: float
    at: float
    refused_at: float | None = None


class Buckets:
    """The budgets of one kind of key: ``attempts`` each, refilled over ``window_seconds``.
    At most ``max_keys`` are kept: beyond, those full again are forgotten (a full budget is
    what a new key gets)."""

    def __init__(self, attempts: int, window_seconds: float, max_keys: int = 100_000) -> None:
        self.attempts = attempts
        self.window_seconds = window_seconds
        self.max_keys = max_keys
        self.refill_per_second = attempts / window_seconds
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float:
        """Take one attempt of ``key``'s budget: 0.0, or the seconds until one is back."""
        bucket = self._refilled(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.refill_per_second

    def give_back(self, key: str, now: float) -> None:
        bucket = self._refilled(key, now)
        bucket.tokens = min(float(self.attempts), bucket.tokens + 1)

    def first_refusal(self, key: str, now: float) -> bool:
        """Whether this refusal is ``key``'s first of a window (and note it)."""
        bucket = self._refilled(key, now)
        first = bucket.refused_at is None or now - bucket.refused_at >= self.window_seconds
        if first:
            bucket.refused_at = now
        return first

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(float(self.attempts), now)
        refill = (now - bucket.at) * self.refill_per_second
        bucket.tokens = min(float(self.attempts), bucket.tokens + refill)
        bucket.at = now
        return bucket

    def _forget_full(self, now: float) -> None:
        full = [key for key, bucket in self._buckets.items() if self._full(bucket, now)]
        for key in full or list(self._buckets)[: self.max_keys // 2]:
            del self._buckets[key]

    def _full(self, bucket: _Bucket, now: float) -> bool:
        return bucket.tokens + (now - bucket.at) * self.refill_per_second >= (self.attempts)


class Attempts:
    """The budgets of each kind of key (``{"account": Buckets(...), "address": ...}``)."""

    def __init__(
        self, kinds: Mapping[str, Buckets], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.kinds = dict(kinds)
        self.clock = clock
        self._guard = threading.Lock()

    def take(self, keys: Mapping[str, str]) -> Refused | None:
        """Take one attempt of each key's budget (``{kind: key}``), or none of them and
        say which refuses, for how long (the longest wait)."""
        with self._guard:
            now = self.clock()
            taken: list[tuple[float, str, str]] = []
            refusals: list[tuple[float, str, str]] = []
            for kind, key in keys.items():
                wait = self.kinds[kind].take(key, now)
                (refusals if wait else taken).append((wait, kind, key))
            if not refusals:
                return None
            for _, kind, key in taken:
                self.kinds[kind].give_back(key, now)
            wait, kind, key = max(refusals)
            first = self.kinds[kind].first_refusal(key, now)
            return Refused(kind, key, max(1, math.ceil(wait)), first)

    def give_back(self, keys: Mapping[str, str]) -> None:
        """Return the attempts ``take`` took: the attempt did not fail (or never ran)."""
        with self._guard:
            now = self.clock()
            for kind, key in keys.items():
                self.kinds[kind].give_back(key, now)
