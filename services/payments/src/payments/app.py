from fastapi import FastAPI
from servicekit.app import create_service_app

from payments.settings import PaymentsSettings


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or PaymentsSettings(),
        title="lockstock payments",
        description="Charges against a simulated card processor, with Stripe-style idempotency keys.",
        routers=[],
    )
