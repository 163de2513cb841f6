from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

from servicekit.rules import MAX_PRICE_CENTS, MAX_PRODUCT_NAME, MAX_STOCK
from servicekit.validation import PlainText

ProductName = Annotated[
    PlainText, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PRODUCT_NAME)
]
PriceCents = Annotated[StrictInt, Field(ge=0, le=MAX_PRICE_CENTS)]
StockQty = Annotated[StrictInt, Field(ge=0, le=MAX_STOCK)]
# Stock at or below it opens the product's low-stock alert (issue 14); null: no alert for this product.
LowStockThreshold = Annotated[
    StrictInt,
    Field(ge=0, le=MAX_STOCK, description="Stock at or below this opens a low-stock alert; null: no alert"),
]


class ProductRead(BaseModel):
    id: int
    name: str
    price_cents: int
    stock_qty: int
    low_stock_threshold: int | None


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProductName
    price_cents: PriceCents
    stock_qty: StockQty = 0
    low_stock_threshold: LowStockThreshold | None = None


class ProductUpdate(BaseModel):
    """Only the fields sent change; ``low_stock_threshold: null`` removes the product's threshold."""

    model_config = ConfigDict(extra="forbid")

    name: ProductName | None = None
    price_cents: PriceCents | None = None
    low_stock_threshold: LowStockThreshold | None = None

    @model_validator(mode="after")
    def at_least_one_field(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one of name, price_cents, low_stock_threshold")
        for field in self.model_fields_set - {"low_stock_threshold"}:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self


class StockChange(BaseModel):
    """Either set the stock (``stock_qty``) or adjust it (``delta``), never both."""

    model_config = ConfigDict(extra="forbid")

    stock_qty: StockQty | None = None
    delta: Annotated[StrictInt, Field(ge=-MAX_STOCK, le=MAX_STOCK)] | None = None

    @model_validator(mode="after")
    def exactly_one(self) -> Self:
        if (self.stock_qty is None) == (self.delta is None):
            raise ValueError("send exactly one of stock_qty (to set) or delta (to adjust)")
        return self
