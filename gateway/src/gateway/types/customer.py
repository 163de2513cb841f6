import strawberry

from gateway.clients.orders import AddressRecord, CustomerRecord


@strawberry.type
class Address:
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str

    @classmethod
    def from_record(cls, record: AddressRecord) -> "Address":
        return cls(
            line1=record.line1,
            line2=record.line2,
            city=record.city,
            postal_code=record.postal_code,
            country=record.country,
        )


@strawberry.type
class Customer:
    email: str
    name: str | None
    address: Address | None

    @classmethod
    def from_record(cls, record: CustomerRecord) -> "Customer":
        return cls(
            email=record.email,
            name=record.name,
            address=Address.from_record(record.address) if record.address else None,
        )


@strawberry.input
class AddressInput:
    line1: str
    line2: str | None = strawberry.UNSET
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2, e.g. GB")


@strawberry.input(description="Who the order is for and where it ships.")
class CustomerInput:
    email: str
    name: str
    address: AddressInput
