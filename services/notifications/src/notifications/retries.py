"""The retry schedule of webhook deliveries and emails (Standard Webhooks' suggested one, as Svix uses).

Attempt 1 goes at once; after each failure the next waits the delay below, with ±20 % jitter so receivers
that came back are not hit by every sender at the same second. After the 8th failure (about 27½ hours after
the first attempt) the delivery is marked failed; an admin can redeliver it.

| attempt | 1   | 2   | 3     | 4      | 5   | 6   | 7    | 8    |
|---------|-----|-----|-------|--------|-----|-----|------|------|
| after   | now | 5 s | 5 min | 30 min | 2 h | 5 h | 10 h | 10 h |
"""

import random
from datetime import timedelta

RETRY_DELAYS_S = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
JITTER = 0.2


def next_delay(failures: int, rng: random.Random) -> timedelta | None:
    """How long to wait after the ``failures``-th failure in a row; None: give up."""
    if failures < 1 or failures > len(RETRY_DELAYS_S):
        return None
    base = RETRY_DELAYS_S[failures - 1]
    return timedelta(seconds=base * rng.uniform(1 - JITTER, 1 + JITTER))
