from fastapi import FastAPI

from inventory.api import CALLERS, router
from inventory.settings import InventorySettings
from servicekit.app import create_service_app


def create_app(settings: InventorySettings | None = None) -> FastAPI:
    return create_service_app(
        settings or InventorySettings(),
        title="lockstock inventory",
        description="Products, prices and stock.",
        routers=[router],
        callers=CALLERS,
    )
