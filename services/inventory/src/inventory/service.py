"""Inventory use cases."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from inventory import metrics, repository
from inventory.errors import InsufficientStock, ProductNotFound
from inventory.schemas import ProductCreate, ProductRead, ProductUpdate, StockChange


def _read(row: object) -> ProductRead:
    return ProductRead.model_validate(row, from_attributes=True)


async def list_products(
    session: AsyncSession, *, after: int, limit: int, ids: Sequence[int] | None
) -> list[ProductRead]:
    rows = await (
        repository.get_products(session, ids)
        if ids is not None
        else repository.list_products(session, after=after, limit=limit)
    )
    return [_read(row) for row in rows]


async def get_product(session: AsyncSession, product_id: int) -> ProductRead:
    row = await repository.get_product(session, product_id)
    if row is None:
        raise ProductNotFound(f"There is no product {product_id}.", product_id=product_id)
    return _read(row)


async def create_product(session: AsyncSession, data: ProductCreate) -> ProductRead:
    return _read(await repository.insert_product(session, **data.model_dump()))


async def update_product(session: AsyncSession, product_id: int, data: ProductUpdate) -> ProductRead:
    row = await repository.update_product(session, product_id, **data.model_dump(exclude_unset=True))
    if row is None:
        raise ProductNotFound(f"There is no product {product_id}.", product_id=product_id)
    return _read(row)


async def change_stock(session: AsyncSession, product_id: int, change: StockChange) -> ProductRead:
    if change.stock_qty is not None:
        row = await repository.set_stock(session, product_id, change.stock_qty)
    else:
        assert change.delta is not None
        row = await repository.adjust_stock(session, product_id, change.delta)
    if row is not None:
        metrics.STOCK_CHANGES.labels("set" if change.stock_qty is not None else "delta").inc()
        return _read(row)
    current = await get_product(session, product_id)  # raises ProductNotFound
    metrics.STOCK_CHANGES_REFUSED.inc()
    raise InsufficientStock(
        f"Cannot remove {-(change.delta or 0)} units of product {product_id}: "
        f"only {current.stock_qty} in stock.",
        items=[{"product_id": product_id, "requested": -(change.delta or 0), "available": current.stock_qty}],
    )
