"""DataLoaders, built per request (a loader caches, and a cache must not outlive its request)."""

import asyncio
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from gateway.clients.inventory import InventoryClient, ProductRecord
from gateway.clients.payments import PaymentRecord, PaymentsClient


@dataclass
class Loaders:
    product: DataLoader[int, ProductRecord | None]
    payments: DataLoader[int, list[PaymentRecord]]


def build_loaders(inventory: InventoryClient, payments: PaymentsClient) -> Loaders:
    async def load_products(ids: list[int]) -> list[ProductRecord | None]:
        found = {record.id: record for record in await inventory.get_products(sorted(set(ids)))}
        return [found.get(product_id) for product_id in ids]

    async def load_payments(order_ids: list[int]) -> list[list[PaymentRecord]]:
        # Payments lists by one order at a time; a page of orders asks for each at once, not one by one.
        return list(await asyncio.gather(*(payments.list_for_order(order_id) for order_id in order_ids)))

    return Loaders(product=DataLoader(load_fn=load_products), payments=DataLoader(load_fn=load_payments))
