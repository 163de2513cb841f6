# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with arguments are typed as returning Any, so every resolver would be flagged.)
import strawberry

from gateway.clients.inventory import MAX_PAGE, ProductRecord
from gateway.clients.orders import OrderRecord
from gateway.errors import BadRequest
from gateway.ids import parse_id
from gateway.permissions import Requires
from gateway.scopes import Scope
from gateway.types.order import Order, OrderConnection, OrderStatus
from gateway.types.page import PageInfo
from gateway.types.product import Product, ProductConnection


def _check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise BadRequest(f"first must be between 1 and {MAX_PAGE}.")


def _parse_cursor(after: str | None) -> int | None:
    if not after:  # None or UNSET: the first page
        return None
    cursor = parse_id(after)
    if cursor is None:
        raise BadRequest("after must be an endCursor from a previous page.")
    return cursor


@strawberry.type
class Query:
    @strawberry.field(
        description="Products by id, keyset paged: pass pageInfo.endCursor as after. first ≤ 100."
    )
    async def products(
        self, info: strawberry.Info, first: int = 20, after: str | None = strawberry.UNSET
    ) -> ProductConnection:
        _check_first(first)
        cursor = _parse_cursor(after)
        inventory = info.context.inventory
        # One more than asked says whether there is a next page; inventory caps a page at 100.
        rows: list[ProductRecord] = await inventory.list_products(
            limit=min(first + 1, MAX_PAGE), after=cursor
        )
        has_next = len(rows) > first
        if not has_next and len(rows) == first == MAX_PAGE:
            has_next = bool(await inventory.list_products(limit=1, after=rows[-1].id))
        rows = rows[:first]
        return ProductConnection(
            nodes=[Product.from_record(row) for row in rows],
            page_info=PageInfo(end_cursor=str(rows[-1].id) if rows else None, has_next_page=has_next),
        )

    @strawberry.field(description="null when it does not exist")
    async def product(self, info: strawberry.Info, id: strawberry.ID) -> Product | None:  # noqa: A002
        product_id = parse_id(id)
        if product_id is None:
            return None
        record = await info.context.loaders.product.load(product_id)
        return Product.from_record(record) if record else None

    @strawberry.field(
        description=f"Products by id, in the order asked: null for an id that does not exist. At most "
        f"{MAX_PAGE} ids; the same id may be asked more than once."
    )
    async def products_by_ids(self, info: strawberry.Info, ids: list[strawberry.ID]) -> list[Product | None]:
        if len(ids) > MAX_PAGE:
            raise BadRequest(f"ids takes at most {MAX_PAGE} ids.")
        wanted = [parse_id(raw) for raw in ids]
        known = [product_id for product_id in wanted if product_id is not None]
        # The request's product loader: one call to inventory (GET /products?ids=…) for all of them, shared
        # with every other product field of the operation.
        records = dict(zip(known, await info.context.loaders.product.load_many(known), strict=True))
        return [
            None
            if product_id is None or (record := records[product_id]) is None
            else Product.from_record(record)
            for product_id in wanted
        ]

    @strawberry.field(
        description="The order, for an admin or with the order's own accessToken (from placeOrder); null "
        "otherwise, exactly as for an order that does not exist."
    )
    async def order(
        self,
        info: strawberry.Info,
        id: strawberry.ID,  # noqa: A002
        access_token: str | None = strawberry.UNSET,
    ) -> Order | None:
        order_id = parse_id(id)
        if order_id is None:
            return None
        context = info.context
        token = access_token if isinstance(access_token, str) else None
        # The token is checked before orders is asked, so a wrong one costs (and reveals) nothing.
        if not context.allows(Scope.ORDERS_READ) and not context.order_tokens.verify(order_id, token):
            return None
        record = await context.orders.get_order(order_id)
        return Order.from_record(record) if record else None

    @strawberry.field(
        permission_classes=[Requires[Scope.ORDERS_READ]],
        description="Admin only. Newest first: pass pageInfo.endCursor as after. first ≤ 100.",
    )
    async def orders(
        self,
        info: strawberry.Info,
        status: OrderStatus | None = strawberry.UNSET,
        first: int = 20,
        after: str | None = strawberry.UNSET,
    ) -> OrderConnection:
        _check_first(first)
        cursor = _parse_cursor(after)
        client = info.context.orders
        status_name = status.value if isinstance(status, OrderStatus) else None
        rows: list[OrderRecord] = await client.list_orders(
            status=status_name, limit=min(first + 1, MAX_PAGE), after=cursor
        )
        has_next = len(rows) > first
        if not has_next and len(rows) == first == MAX_PAGE:
            has_next = bool(await client.list_orders(status=status_name, limit=1, after=rows[-1].id))
        rows = rows[:first]
        return OrderConnection(
            nodes=[Order.from_record(row) for row in rows],
            page_info=PageInfo(end_cursor=str(rows[-1].id) if rows else None, has_next_page=has_next),
        )
