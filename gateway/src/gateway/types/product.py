import strawberry

from gateway.clients.inventory import ProductRecord
from gateway.errors import UserError
from gateway.permissions import Requires
from gateway.scopes import Scope
from gateway.types.page import PageInfo
from gateway.types.scalars import Cents


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    price_cents: Cents
    stock_qty: int
    low_stock_threshold: int | None = strawberry.field(
        description="Admin. Stock at or below this opens a low-stock alert (mailed to the admin); null: no "
        "alert.",
        permission_classes=[Requires[Scope.CATALOG_READ]],
    )

    @classmethod
    def from_record(cls, record: ProductRecord) -> "Product":
        return cls(
            id=strawberry.ID(str(record.id)),
            name=record.name,
            price_cents=Cents(record.price_cents),
            stock_qty=record.stock_qty,
            low_stock_threshold=record.low_stock_threshold,
        )


@strawberry.type
class ProductConnection:
    nodes: list[Product]
    page_info: PageInfo


@strawberry.type
class ProductPayload:
    product: Product | None = None
    errors: list[UserError]


@strawberry.input
class CreateProductInput:
    name: str
    price_cents: Cents
    stock_qty: int


@strawberry.input
class UpdateProductInput:
    id: strawberry.ID
    name: str | None = strawberry.UNSET
    price_cents: Cents | None = strawberry.UNSET
    low_stock_threshold: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="Set the low-stock threshold (0 or more); null removes it (no alerts). Omit to keep it.",
    )


@strawberry.input
class AdjustStockInput:
    product_id: strawberry.ID
    set_to: int | None = strawberry.UNSET
    delta: int | None = strawberry.UNSET
