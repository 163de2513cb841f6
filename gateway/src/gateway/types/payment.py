from datetime import datetime

import strawberry

from gateway.clients.payments import PaymentRecord
from gateway.types.scalars import Cents


@strawberry.type(description="One payment of an order, as payments keeps it (admin only).")
class Payment:
    id: strawberry.ID
    status: str = strawberry.field(
        description="pending, authorized, declined, captured, partially_refunded, refunded or voided"
    )
    amount_cents: Cents = strawberry.field(description="What was authorized")
    captured_cents: Cents
    refunded_cents: Cents
    card_brand: str | None
    card_last4: str | None
    failure_code: str | None
    authorization_expires_at: datetime | None = strawberry.field(
        description="After this an authorization can no longer be captured (only voided)"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: PaymentRecord) -> "Payment":
        return cls(
            id=strawberry.ID(str(record.payment_id)),
            status=record.status,
            amount_cents=Cents(record.amount_cents),
            captured_cents=Cents(record.captured_cents),
            refunded_cents=Cents(record.refunded_cents),
            card_brand=record.card_brand,
            card_last4=record.card_last4,
            failure_code=record.failure_code,
            authorization_expires_at=record.authorization_expires_at,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
