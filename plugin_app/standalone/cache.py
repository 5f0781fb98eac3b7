"""
The standalone server's cache on Redis, which a Redis outage degrades instead of breaking.

The cache holds only the counters of failed sign-ins (``throttle``), on the broker's Redis by
default. A token needs neither the broker nor the counters: while Redis is unreachable nothing is
counted (django-ratelimit then fails open, ``RATELIMIT_FAIL_OPEN``), and each miss is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class OutageTolerantRedisCache(RedisCache):
    """Django's Redis cache; an unreachable Redis reads as empty and takes no write."""

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return bool(super().add(key, value, timeout, version))
        except RedisError as exc:
            _outage(exc)
            return False

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            _outage(exc)
            return default

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            _outage(exc)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return int(super().incr(key, delta, version))
        except RedisError as exc:
            _outage(exc)
            raise ValueError("The cache is unreachable.") from exc  # what a missing key raises


def _outage(exc: RedisError) -> None:
    log.warning("The cache (Redis) is unreachable; failed sign-ins are not counted meanwhile: %r", exc)
