"""What an API key may do. A signed-in admin may do all of it; a key only what its scopes name.

Managing accounts and keys is no scope: only a signed-in admin (a person) does that, so a leaked key cannot
mint itself a wider one."""

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
