"""Every GraphQL operation counts against its client's budget (GATEWAY_RATE_LIMIT_OPERATION).

placeOrder, authorizePayment and login keep their own, tighter limits; this one bounds everything else a
client can make the gateway do, queries included. An operation is counted once it has parsed, before it is
validated or run: a document that fails validation still cost the gateway its validation (the expensive part
of a new document), so it counts; a body that does not even parse is bounded by the token and body limits and
is not counted. One HTTP request is one operation (strawberry executes one per request).

Over budget, the operation is refused before validation, in the shape every rate limit answers:
RATE_LIMITED with ``extensions.retryAfter`` (gateway.errors.RateLimited).
"""

from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.context import Context
from gateway.errors import GatewayError


class OperationLimit(SchemaExtension):
    """Counts the operation in ``on_validate``, before the validation cache runs (it must come before
    ValidationCache in the schema's extensions, and the cache skips a refused operation: see
    schema.build_schema)."""

    async def on_validate(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        # A schema executed without the HTTP context (tests of the schema alone) has no client to count.
        if isinstance(context, Context) and not execution.pre_execution_errors:
            try:
                await context.limits.hit(context.limits.operation, "operation", context.client_key())
            except GatewayError as refusal:  # RATE_LIMITED, or SERVICE_UNAVAILABLE with the store down
                execution.pre_execution_errors = [GraphQLError(str(refusal), original_error=refusal)]
        yield
