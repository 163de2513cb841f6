"""What an API key may do. A signed-in admin may do all of it; a key only what its scopes name.

Managing accounts and keys is no scope: only a signed-in admin (a person) does that, so a leaked key cannot
mint itself a wider one."""

from collections.abc import Iterable
from enum import Enum

import strawberry


@strawberry.enum(description="A permission an API key can carry.")
class Scope(Enum):
    CATALOG_READ = "catalog:read"  # the admin's product fields (low-stock thresholds) and low-stock alerts
    CATALOG_WRITE = "catalog:write"  # create and update products, adjust stock
    ORDERS_READ = "orders:read"  # every order (not only with its access token), the order list, payments
    ORDERS_WRITE = "orders:write"  # capture, cancel, refund
    MAIL_READ = "mail:read"  # the outgoing mail
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"  # register, delete, redeliver
    SALES_READ = "sales:read"  # the sales report


def scopes_named(names: Iterable[str]) -> list[Scope]:
    """The scopes a stored key names, in its order; a name no longer known (a removed scope) grants
    nothing."""
    return [_BY_NAME[name] for name in names if name in _BY_NAME]


_BY_NAME = {scope.value: scope for scope in Scope}

# What each scope lets a key do, in the words the admin's key form shows.
DESCRIPTIONS: dict[Scope, str] = {
    Scope.CATALOG_READ: "Read low-stock thresholds and alerts.",
    Scope.CATALOG_WRITE: "Create and update products; adjust stock.",
    Scope.ORDERS_READ: "Read every order, the order list and their payments.",
    Scope.ORDERS_WRITE: "Capture, cancel and refund orders.",
    Scope.MAIL_READ: "Read the outgoing mail.",
    Scope.WEBHOOKS_READ: "Read webhook endpoints and their delivery logs.",
    Scope.WEBHOOKS_WRITE: "Register, delete and redeliver webhooks.",
    Scope.SALES_READ: "Read the sales report.",
}
