"""DataLoaders, built per request (a loader caches, and a cache must not outlive its request)."""

from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from gateway.clients.inventory import InventoryClient, ProductRecord


@dataclass
class Loaders:
    product: DataLoader[int, ProductRecord | None]


def build_loaders(inventory: InventoryClient) -> Loaders:
    async def load_products(ids: list[int]) -> list[ProductRecord | None]:
        found = {record.id: record for record in await inventory.get_products(sorted(set(ids)))}
        return [found.get(product_id) for product_id in ids]

    return Loaders(product=DataLoader(load_fn=load_products))
