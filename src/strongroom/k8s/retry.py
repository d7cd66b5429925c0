"""Bounded retries with exponential backoff toward the key service.

A call is retried only when the failure is transient: an
:class:`~strongroom.errors.InternalError` (the key service or its store failed, or did not
answer in time) or AWS throttling. A client error (disabled key, bad ciphertext, access
denied) fails at once: asking again would get the same answer. Retries stop after
``attempts`` tries or when the next pause would pass the caller's deadline (the gRPC
deadline kube-apiserver set), whichever comes first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from strongroom.errors import InternalError, StrongroomError

T = TypeVar("T")

RETRYABLE_TYPES = frozenset(
    {
        "ThrottlingException",
        "KMSInternalException",
        "DependencyTimeoutException",
        "KeyUnavailableException",
    }
)
"""AWS error types worth another try (beside every :class:`InternalError`)."""


def is_retryable(error: StrongroomError) -> bool:
    """Whether ``error`` is transient, so the same call may succeed later."""
    return isinstance(error, InternalError) or error.aws_type in RETRYABLE_TYPES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one key service call.

    ``attempts`` counts the first try; pause ``n`` (from 1) is
    ``min(max_delay, base_delay * 2**(n-1))`` scaled by a random factor in [0.5, 1]
    (jitter, so many callers do not retry in step).
    """

    attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry: int, jitter: float) -> float:
        """The pause before retry number ``retry`` (1-based), ``jitter`` in [0, 1]."""
        raw = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        return raw * (0.5 + jitter / 2)


class Retrier:
    """Runs calls under a :class:`RetryPolicy` with an injected clock and sleep.

    ``clock`` is monotonic seconds (deadlines are on this clock); ``sleep`` pauses;
    ``on_retry(operation, error)`` is told about every retry (for metrics and logs).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        on_retry: Callable[[str, StrongroomError], None] | None = None,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._on_retry = on_retry

    def call(self, operation: str, fn: Callable[[], T], deadline: float | None = None) -> T:
        """Return ``fn()``, retrying transient failures; re-raise the last failure."""
        retry = 0
        while True:
            try:
                return fn()
            except StrongroomError as exc:
                retry += 1
                if retry >= self.policy.attempts or not is_retryable(exc):
                    raise
                pause = self.policy.delay(retry, self._jitter())
                if deadline is not None and self._clock() + pause >= deadline:
                    raise
                if self._on_retry is not None:
                    self._on_retry(operation, exc)
                self._sleep(pause)
