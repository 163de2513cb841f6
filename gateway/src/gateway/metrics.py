"""Gateway metrics: GraphQL operations by root field and result, and every upstream call's latency and
outcome. Labels are bounded: root fields come from the schema, never from the client's operation name."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

GRAPHQL_OPERATIONS = Counter(
    "lockstock_graphql_operations",
    "GraphQL operations by root field (placeOrder, products, …; 'other' for anything else) and result: "
    "ok, or error (a top-level error such as BAD_REQUEST or INTERNAL).",
    ["field", "result"],
)
PASSWORD_VERIFICATIONS = Counter(
    "lockstock_gateway_password_verifications",
    "argon2 verifications made for sign-ins: one per attempt the sign-in throttle let through.",
)
UPSTREAM_SECONDS = Histogram(
    "lockstock_gateway_upstream_seconds",
    "Latency of the gateway's calls to the services, by upstream and outcome (2xx, 4xx, 5xx, unreachable).",
    ["upstream", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0),
)


@contextmanager
def timed_upstream(upstream: str) -> Iterator[dict[str, str]]:
    """Times one upstream call; the caller sets ``outcome["value"]`` (default: unreachable)."""
    outcome = {"value": "unreachable"}
    started = time.perf_counter()
    try:
        yield outcome
    finally:
        UPSTREAM_SECONDS.labels(upstream, outcome["value"]).observe(time.perf_counter() - started)
