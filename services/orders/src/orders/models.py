from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, Table, Text

metadata = MetaData(schema="orders")

orders = Table(
    "orders",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("status", Text, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("idempotency_key", Text, unique=True),
    Column("payment_attempts", Integer, nullable=False),
    Column("charge_id", BigInteger),
    Column("payment_failure_code", Text),
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
