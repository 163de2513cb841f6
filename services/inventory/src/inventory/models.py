from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text

metadata = MetaData(schema="inventory")

products = Table(
    "products",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("price_cents", BigInteger, nullable=False),
    Column("stock_qty", Integer, nullable=False),
    Column("low_stock_threshold", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
