from gateway.clients.base import UpstreamClient


class PaymentsClient(UpstreamClient):
    """The gateway only checks payments' health: charges are made by orders (capture), never from here."""

    service = "payments"
