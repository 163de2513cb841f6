"""Notifications' domain errors."""

from servicekit.errors import AppError


class EndpointNotFound(AppError):
    status = 404
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class DeliveryNotFound(AppError):
    status = 404
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"


class EndpointDeleted(AppError):
    """The delivery's endpoint was deleted: there is nowhere to redeliver it to."""

    status = 409
    code = "webhook_endpoint_deleted"
    title = "Webhook endpoint deleted"


class WebhookUrlNotAllowed(AppError):
    """Not http(s), no host, a host that does not resolve, or one on a private, loopback or link-local
    address (allowed only with NOTIFICATIONS_WEBHOOKS_ALLOW_PRIVATE=true)."""

    status = 422
    code = "webhook_url_not_allowed"
    title = "Webhook URL not allowed"


class InvalidDateRange(AppError):
    status = 422
    code = "invalid_date_range"
    title = "Invalid date range"
