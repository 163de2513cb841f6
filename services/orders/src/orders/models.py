from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(schema="orders")

orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("status", Text, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("idempotency_key", Text),
    Column("idempotency_claimed_at", DateTime(timezone=True)),
    Column("payment_attempts", Integer, nullable=False),
    Column("payment_id", BigInteger),
    Column("payment_failure_code", Text),
    Column("expires_at", DateTime(timezone=True)),
    Column("authorized_cents", BigInteger, nullable=False),
    Column("captured_cents", BigInteger, nullable=False),
    Column("refunded_cents", BigInteger, nullable=False),
    Column("card_last4", Text),
    Column("customer", JSONB),
    Column("reconcile_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", BigInteger, ForeignKey("orders.orders.id"), primary_key=True),
    Column("product_id", BigInteger, primary_key=True),
    Column("qty", Integer, nullable=False),
    Column("price_cents", BigInteger, nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("orders.orders.id"), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("reason", Text),
    Column("idempotency_key", Text),
    Column("payment_refund_id", BigInteger, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
