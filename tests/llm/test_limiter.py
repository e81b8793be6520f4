from __future__ import annotations

import threading
import time

from llm.engine import AdaptiveLimiter, backoff_seconds


def test_it_bounds_concurrency() -> None:
    limiter = AdaptiveLimiter(3)
    active = peak = 0
    lock = threading.Lock()

    def call() -> None:
        nonlocal active, peak
        with limiter:
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            with lock:
                active -= 1

    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 3


def test_it_halves_on_429_and_grows_back_on_success() -> None:
    limiter = AdaptiveLimiter(8)
    limiter.rate_limited()
    assert limiter.limit == 4
    limiter.rate_limited()
    limiter.rate_limited()
    limiter.rate_limited()
    assert limiter.limit == 1  # never below one
    for _ in range(20):
        limiter.succeeded()
    assert limiter.limit == 8  # never above the setting


def test_backoff_honours_retry_after_within_the_cap(settings: object) -> None:
    assert backoff_seconds(1, 7.0) == 7.0
    assert backoff_seconds(1, 10_000.0) == 60
    assert 0.5 <= backoff_seconds(1, None) <= 1
    assert 4 <= backoff_seconds(4, None) <= 8
    assert backoff_seconds(20, None) == 60
