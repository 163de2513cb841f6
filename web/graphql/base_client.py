"""The base class of the shop's generated client: ariadne-codegen copies this file into
web/src/web/graphql_client/base_client.py (``uv run task codegen``), hence the relative import. Everything
is in servicekit.graphql_client.GatewayBaseClient: the shop's shared httpx.AsyncClient (its caller
credential), X-Forwarded-For, X-Request-ID and the transport errors of post_graphql."""

from servicekit.graphql_client import GatewayBaseClient

from .base_model import UNSET


class ShopBaseClient(GatewayBaseClient):
    unset = UNSET
