"""The base class of the admin's generated client: ariadne-codegen copies this file into
admin/src/admin/graphql_client/base_client.py (``uv run task codegen``), hence the relative import. Everything
is in servicekit.graphql_client.GatewayBaseClient: the admin's shared httpx.AsyncClient (its caller
credential), the admin's bearer token, X-Forwarded-For, X-Request-ID and the transport errors of post_graphql.
"""

from typing import Any

from servicekit.graphql_client import GatewayBaseClient, GraphQLAnswer, GraphQLErrorAnswer

from .base_model import UNSET


class AdminBaseClient(GatewayBaseClient):
    unset = UNSET

    def get_data(self, answer: GraphQLAnswer) -> dict[str, Any]:
        # The admin takes no data from an answer with an error status, as it always has.
        if answer.status >= 400:
            raise GraphQLErrorAnswer(answer)
        return super().get_data(answer)
