from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from servicekit.validation import MAX_ID

# One billion dollars: far above any real basket, far below anything that could overflow.
MAX_AMOUNT_CENTS = 100_000_000_000

ChargeStatus = Literal["pending", "succeeded", "failed"]


class ChargeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: Annotated[StrictInt, Field(ge=1, le=MAX_ID, description="The order this charge pays for")]
    amount_cents: Annotated[
        StrictInt, Field(ge=1, le=MAX_AMOUNT_CENTS, description="Integer cents, at least 1")
    ]


class ChargeResult(BaseModel):
    """The answer to ``POST /charges``: a decided charge (a decline is a decided answer too)."""

    charge_id: int
    status: Literal["succeeded", "failed"]
    failure_code: str | None = Field(description="Why a failed charge failed, e.g. card_declined")


class ChargeRead(BaseModel):
    charge_id: int
    order_id: int
    amount_cents: int
    status: ChargeStatus = Field(description="'pending' only while the processor is being asked")
    failure_code: str | None
    created_at: datetime
