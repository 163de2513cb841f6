"""The SQL for inventory.products."""

from collections.abc import Sequence

from sqlalchemy import Row, TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.models import products

COLUMNS = (products.c.id, products.c.name, products.c.price_cents, products.c.stock_qty)


async def list_products(session: AsyncSession, *, after: int, limit: int) -> Sequence[Row]:  # type: ignore[type-arg]
    # Keyset paging: the index on id makes page 10,000 as cheap as page 1.
    query = select(*COLUMNS).where(products.c.id > after).order_by(products.c.id).limit(limit)
    return (await session.execute(query)).all()


async def get_products(session: AsyncSession, ids: Sequence[int]) -> Sequence[Row]:  # type: ignore[type-arg]
    query = select(*COLUMNS).where(products.c.id.in_(ids)).order_by(products.c.id)
    return (await session.execute(query)).all()


async def get_product(session: AsyncSession, product_id: int) -> Row | None:  # type: ignore[type-arg]
    return (await session.execute(select(*COLUMNS).where(products.c.id == product_id))).first()


# Every change of a product writes its product.changed event (issue 14, docs/events.md) in the same statement,
# from the CTE that made the change: the event exists if and only if the change committed, and a change that
# matched no row (no such product, or a delta that would go below zero) writes none. No RETURNING from
# outbox.events: a producer may only append. Inventory has no low-stock threshold yet, so it is null.
def _changed(change: str) -> TextClause:
    return text(
        f"""
        WITH changed AS ({change} RETURNING id, name, price_cents, stock_qty),
        event AS (
            INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
            SELECT 'product.changed', 'product', c.id,
                   jsonb_build_object('product_id', c.id, 'name', c.name, 'price_cents', c.price_cents,
                                      'stock_qty', c.stock_qty, 'threshold', NULL)
              FROM changed AS c
        )
        SELECT id, name, price_cents, stock_qty FROM changed
        """
    )


INSERT_PRODUCT = _changed(
    """
    INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES (:name, :price_cents, :stock_qty)
    """
)
# Fields not given are None and keep their value (the API never sets one to null).
UPDATE_PRODUCT = _changed(
    """
    UPDATE inventory.products
       SET name = COALESCE(CAST(:name AS text), name),
           price_cents = COALESCE(CAST(:price_cents AS bigint), price_cents),
           stock_qty = COALESCE(CAST(:stock_qty AS integer), stock_qty),
           updated_at = now()
     WHERE id = :id
    """
)
ADJUST_STOCK = _changed(
    """
    UPDATE inventory.products
       SET stock_qty = stock_qty + :delta, updated_at = now()
     WHERE id = :id AND stock_qty + :delta >= 0
    """
)


async def insert_product(session: AsyncSession, *, name: str, price_cents: int, stock_qty: int) -> Row:  # type: ignore[type-arg]
    params = {"name": name, "price_cents": price_cents, "stock_qty": stock_qty}
    return (await session.execute(INSERT_PRODUCT, params)).one()


async def update_product(
    session: AsyncSession,
    product_id: int,
    *,
    name: str | None = None,
    price_cents: int | None = None,
    stock_qty: int | None = None,
) -> Row | None:  # type: ignore[type-arg]
    params = {"id": product_id, "name": name, "price_cents": price_cents, "stock_qty": stock_qty}
    return (await session.execute(UPDATE_PRODUCT, params)).first()


async def set_stock(session: AsyncSession, product_id: int, stock_qty: int) -> Row | None:  # type: ignore[type-arg]
    return await update_product(session, product_id, stock_qty=stock_qty)


async def adjust_stock(session: AsyncSession, product_id: int, delta: int) -> Row | None:  # type: ignore[type-arg]
    """Add ``delta`` in one atomic UPDATE that refuses to go below zero; None if it would (or no product)."""
    return (await session.execute(ADJUST_STOCK, {"id": product_id, "delta": delta})).first()
