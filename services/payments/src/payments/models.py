from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text

metadata = MetaData(schema="payments")

charges = Table(
    "charges",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("failure_code", Text),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
)
