from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from servicekit.validation import MAX_ID

# One billion dollars: far above any real basket, far below anything that could overflow.
MAX_AMOUNT_CENTS = 100_000_000_000

PaymentStatus = Literal[
    "pending", "authorized", "declined", "captured", "partially_refunded", "refunded", "voided"
]
# Money was captured: the payment can be refunded (what is left of it), never voided.
CAPTURED_STATUSES = frozenset({"captured", "partially_refunded", "refunded"})

Cents = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT_CENTS, description="Integer cents, at least 1")]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID, description="The order this payment pays for")]
    amount_cents: Cents
    card_number: Annotated[
        StrictStr,
        Field(
            min_length=1,
            max_length=64,
            description="12 to 19 digits passing Luhn, spaces or dashes allowed. Used once, to ask the "
            "processor; never stored or logged. Test cards: 4000 0000 0000 0002 declines card_declined, "
            "4000 0000 0000 9995 insufficient_funds, any other valid number (4242 4242 4242 4242) "
            "authorizes.",
        ),
    ]


class NoBody(BaseModel):
    """Capture and void take no parameters: ``{}`` (or no body at all)."""

    model_config = ConfigDict(extra="forbid")


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Cents


class RefundRead(BaseModel):
    refund_id: int
    amount_cents: int
    created_at: datetime


class PaymentRead(BaseModel):
    payment_id: int
    order_id: int
    amount_cents: int = Field(description="The authorized amount")
    captured_cents: int
    refunded_cents: int = Field(
        description="Refunds accepted, including any still being sent to the processor"
    )
    status: PaymentStatus = Field(description="'pending' only while the processor is being asked")
    failure_code: str | None = Field(description="Why a declined payment was declined, e.g. card_declined")
    card_brand: str
    card_last4: str
    authorization_expires_at: datetime | None = Field(
        description="Capture before then (null while pending and when declined)"
    )
    created_at: datetime
    updated_at: datetime
    refunds: list[RefundRead] = Field(description="Oldest first")


class RefundResult(RefundRead):
    """The answer to ``POST /payments/{id}/refunds``: the refund and the payment as it now stands."""

    payment: PaymentRead
