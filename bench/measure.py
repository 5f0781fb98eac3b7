"""Measuring helpers the benchmarks share: wall time of a call, and peak RSS while it runs."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.stack import Stack


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


RSS_NOISE_MB = 16.0


def peak_rss_growth(stack: Stack, fn, rss=None) -> tuple[float, float]:
    """Peak RSS (MB) of the server (or of what ``rss`` measures) while ``fn`` runs, and its growth
    over the RSS before."""
    rss = rss or stack.server_rss
    before = rss()
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return peak / 2**20, (peak - before) / 2**20
