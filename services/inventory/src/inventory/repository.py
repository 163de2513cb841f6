"""The SQL for inventory.products."""

import enum
from collections.abc import Sequence

from sqlalchemy import Row, TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.models import products


class Keep(enum.Enum):
    """Leave the value as it is (for a field where None means "clear it")."""

    KEEP = "keep"


COLUMNS = (
    products.c.id,
    products.c.name,
    products.c.price_cents,
    products.c.stock_qty,
    products.c.low_stock_threshold,
)


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
# outbox.events: a producer may only append.
#
# A product is low when its stock is at or below its low-stock threshold (NULL: never low). A change that
# makes it low writes stock.low, one that makes it no longer low writes stock.restored, before its
# product.changed. "Before" is read under the row lock (``before``, FOR UPDATE, then the UPDATE of the row
# it holds), so it is the stock and threshold every other writer of the row left: orders' placing and
# restocking statements lock the same row and decide the same way, so each crossing is written once.
_IS_LOW = "COALESCE({0}.stock_qty <= {0}.low_stock_threshold, false)"
_RETURNING = f"""
    RETURNING p.id, p.name, p.price_cents, p.stock_qty, p.low_stock_threshold, {_IS_LOW.format("p")} AS is_low
"""


def _changed(change: str) -> TextClause:
    """``change``: CTEs ending in ``changed``, whose rows are the product as changed (``_RETURNING``) and
    ``was_low``: whether it was low before."""
    return text(
        f"""
        WITH {change},
        event AS (
            INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
            SELECT e.type, 'product', e.product_id, e.data
              FROM (SELECT 1 AS n, CASE WHEN c.is_low THEN 'stock.low' ELSE 'stock.restored' END AS type,
                           c.id AS product_id,
                           jsonb_build_object('product_id', c.id, 'name', c.name, 'stock_qty', c.stock_qty,
                                              'threshold', c.low_stock_threshold) AS data
                      FROM changed AS c
                     WHERE c.is_low <> c.was_low
                    UNION ALL
                    SELECT 2, 'product.changed', c.id,
                           jsonb_build_object('product_id', c.id, 'name', c.name,
                                              'price_cents', c.price_cents, 'stock_qty', c.stock_qty,
                                              'threshold', c.low_stock_threshold)
                      FROM changed AS c) AS e
             ORDER BY e.n
        )
        SELECT id, name, price_cents, stock_qty, low_stock_threshold FROM changed
        """
    )


def _update(set_clause: str, condition: str = "true") -> TextClause:
    return _changed(
        f"""
        before AS MATERIALIZED (
            SELECT id, stock_qty, low_stock_threshold FROM inventory.products WHERE id = :id FOR UPDATE
        ),
        changed AS (
            UPDATE inventory.products AS p
               SET {set_clause}, updated_at = now()
              FROM before AS b
             WHERE p.id = b.id AND {condition}
            {_RETURNING.rstrip()}, {_IS_LOW.format("b")} AS was_low
        )
        """
    )


INSERT_PRODUCT = _changed(
    f"""
    changed AS (
        INSERT INTO inventory.products AS p (name, price_cents, stock_qty, low_stock_threshold)
        VALUES (:name, :price_cents, :stock_qty, :low_stock_threshold)
        {_RETURNING.rstrip()}, false AS was_low
    )
    """
)
# Fields not given are None and keep their value (the API never sets one to null), but for the threshold:
# null clears it, so whether it is given travels apart (``set_threshold``).
UPDATE_PRODUCT = _update(
    """
    name = COALESCE(CAST(:name AS text), p.name),
    price_cents = COALESCE(CAST(:price_cents AS bigint), p.price_cents),
    stock_qty = COALESCE(CAST(:stock_qty AS integer), p.stock_qty),
    low_stock_threshold = CASE WHEN CAST(:set_threshold AS boolean) THEN CAST(:low_stock_threshold AS integer)
                               ELSE p.low_stock_threshold END
    """
)
ADJUST_STOCK = _update("stock_qty = p.stock_qty + :delta", "b.stock_qty + :delta >= 0")


async def insert_product(
    session: AsyncSession,
    *,
    name: str,
    price_cents: int,
    stock_qty: int,
    low_stock_threshold: int | None = None,
) -> Row:  # type: ignore[type-arg]
    params = {
        "name": name,
        "price_cents": price_cents,
        "stock_qty": stock_qty,
        "low_stock_threshold": low_stock_threshold,
    }
    return (await session.execute(INSERT_PRODUCT, params)).one()


async def update_product(
    session: AsyncSession,
    product_id: int,
    *,
    name: str | None = None,
    price_cents: int | None = None,
    stock_qty: int | None = None,
    low_stock_threshold: int | Keep | None = Keep.KEEP,
) -> Row | None:  # type: ignore[type-arg]
    """``low_stock_threshold``: an int, or None to clear it; the other fields keep their value when None."""
    params = {
        "id": product_id,
        "name": name,
        "price_cents": price_cents,
        "stock_qty": stock_qty,
        "set_threshold": low_stock_threshold is not Keep.KEEP,
        "low_stock_threshold": None if low_stock_threshold is Keep.KEEP else low_stock_threshold,
    }
    return (await session.execute(UPDATE_PRODUCT, params)).first()


async def set_stock(session: AsyncSession, product_id: int, stock_qty: int) -> Row | None:  # type: ignore[type-arg]
    return await update_product(session, product_id, stock_qty=stock_qty)


async def adjust_stock(session: AsyncSession, product_id: int, delta: int) -> Row | None:  # type: ignore[type-arg]
    """Add ``delta`` in one atomic UPDATE that refuses to go below zero; None if it would (or no product)."""
    return (await session.execute(ADJUST_STOCK, {"id": product_id, "delta": delta})).first()
