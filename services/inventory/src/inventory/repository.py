"""The SQL for inventory.products."""

from collections.abc import Sequence

from sqlalchemy import Row, func, insert, select, update
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


async def insert_product(session: AsyncSession, *, name: str, price_cents: int, stock_qty: int) -> Row:  # type: ignore[type-arg]
    query = (
        insert(products).values(name=name, price_cents=price_cents, stock_qty=stock_qty).returning(*COLUMNS)
    )
    return (await session.execute(query)).one()


async def update_product(session: AsyncSession, product_id: int, **values: object) -> Row | None:  # type: ignore[type-arg]
    query = (
        update(products)
        .where(products.c.id == product_id)
        .values(**values, updated_at=func.now())
        .returning(*COLUMNS)
    )
    return (await session.execute(query)).first()


async def set_stock(session: AsyncSession, product_id: int, stock_qty: int) -> Row | None:  # type: ignore[type-arg]
    return await update_product(session, product_id, stock_qty=stock_qty)


async def adjust_stock(session: AsyncSession, product_id: int, delta: int) -> Row | None:  # type: ignore[type-arg]
    """Add ``delta`` in one atomic UPDATE that refuses to go below zero; None if it would (or no product)."""
    query = (
        update(products)
        .where(products.c.id == product_id, products.c.stock_qty + delta >= 0)
        .values(stock_qty=products.c.stock_qty + delta, updated_at=func.now())
        .returning(*COLUMNS)
    )
    return (await session.execute(query)).first()
