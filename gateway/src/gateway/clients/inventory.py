from pydantic import BaseModel, TypeAdapter

from gateway.clients.base import UpstreamClient, UpstreamError


class ProductRecord(BaseModel):
    id: int
    name: str
    price_cents: int
    stock_qty: int
    low_stock_threshold: int | None = None


_products = TypeAdapter(list[ProductRecord])

MAX_PAGE = 100  # inventory's cap on limit and on ids


class InventoryClient(UpstreamClient):
    service = "inventory"

    async def list_products(self, *, limit: int, after: int | None) -> list[ProductRecord]:
        params = {"limit": str(limit)} | ({"after": str(after)} if after is not None else {})
        response = await self.request("GET", "/products", params=params)
        return _products.validate_json(response.content)

    async def get_products(self, ids: list[int]) -> list[ProductRecord]:
        found: list[ProductRecord] = []
        for start in range(0, len(ids), MAX_PAGE):
            chunk = ids[start : start + MAX_PAGE]
            response = await self.request("GET", "/products", params={"ids": ",".join(map(str, chunk))})
            found.extend(_products.validate_json(response.content))
        return found

    async def get_product(self, product_id: int) -> ProductRecord | None:
        try:
            response = await self.request("GET", f"/products/{product_id}")
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return ProductRecord.model_validate_json(response.content)

    async def create_product(self, *, name: str, price_cents: int, stock_qty: int) -> ProductRecord:
        body = {"name": name, "price_cents": price_cents, "stock_qty": stock_qty}
        response = await self.request("POST", "/products", json=body)
        return ProductRecord.model_validate_json(response.content)

    async def update_product(self, product_id: int, changes: dict[str, object]) -> ProductRecord:
        response = await self.request("PATCH", f"/products/{product_id}", json=changes)
        return ProductRecord.model_validate_json(response.content)

    async def adjust_stock(self, product_id: int, change: dict[str, int]) -> ProductRecord:
        response = await self.request("PATCH", f"/products/{product_id}/stock", json=change)
        return ProductRecord.model_validate_json(response.content)
