"""The arithmetic of turning RelayAPI's limits and weights into what Postfix can express.

Pure functions (no database, no files), so each rounding rule is stated and tested once.
"""

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce

# A route's shares become repetition counts in a randmap of at most this many entries per 100 %:
# each share is rounded to a whole percent (largest remainder), never to 0 when it is not 0.
SHARE_STEPS = 100
# At most this many copies of a relay's smtp service carry a max_messages_per_hour limit.
MAX_RATE_COPIES = 32
SECONDS_PER_HOUR = 3600


def repetitions(shares, steps=SHARE_STEPS):
    """Whole repetition counts for `shares` (non-negative, summing to ~1), in the same order,
    reduced by their greatest common divisor: [0.75, 0.25] -> [3, 1], [0.5, 0.5] -> [1, 1].

    Each count is the share of `steps` rounded by the largest-remainder method, so the counts
    add up to `steps` before the reduction; a share that is not zero keeps at least one entry.
    """
    total = sum(shares)
    if not shares or total <= 0:
        raise ValueError("a route needs at least one share greater than 0")
    exact = [share / total * steps for share in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: steps - sum(counts)]:
        counts[i] += 1
    counts = [max(c, 1) if s > 0 else 0 for c, s in zip(counts, shares, strict=True)]
    for _ in range(sum(counts) - steps):  # the entries given to tiny shares come from the largest
        counts[counts.index(max(counts))] -= 1
    divisor = reduce(math.gcd, [c for c in counts if c])
    return [c // divisor for c in counts]


@dataclass(frozen=True)
class RatePlan:
    """How a service honours its limits: `copies` copies of it, each delivering one message at a
    time with `delay` whole seconds between messages (`destination_rate_delay`), or, without a
    rate limit, one service with `concurrency` connections per destination (0: unlimited)."""

    copies: int
    delay: int  # seconds; 0: no rate limit
    concurrency: int

    @property
    def messages_per_hour(self):
        """The rate the plan allows (a Fraction; 0: no rate limit)."""
        return Fraction(self.copies * SECONDS_PER_HOUR, self.delay) if self.delay else 0


def rate_plan(max_messages_per_hour, max_concurrent_connections):
    """The plan closest to `max_messages_per_hour` that never exceeds it nor the connection
    limit (0 = unlimited for both).

    Postfix's `destination_rate_delay` takes whole seconds and forces one connection at a time
    per destination. So k copies of the service, each with a delay of d seconds, deliver
    k * 3600 / d messages an hour over at most k connections: the plan picks the k (at most the
    connection limit and MAX_RATE_COPIES) and d (the smallest that keeps the rate within the
    limit) whose rate is highest; the fewest copies on a tie.
    """
    limit, connections = max_messages_per_hour, max_concurrent_connections
    if not limit:
        return RatePlan(copies=1, delay=0, concurrency=connections)
    best = None
    for copies in range(1, min(connections or MAX_RATE_COPIES, MAX_RATE_COPIES) + 1):
        delay = max(1, math.ceil(copies * SECONDS_PER_HOUR / limit))
        plan = RatePlan(copies=copies, delay=delay, concurrency=1)
        if plan.messages_per_hour > limit:
            continue  # only when even 1 s is too slow a delay for this many copies
        if best is None or plan.messages_per_hour > best.messages_per_hour:
            best = plan
    return best
