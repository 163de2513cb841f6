from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

MAX_CENTS = 2**63 - 1  # PostgreSQL bigint


def _parse_cents(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Cents must be an integer number of cents")
    if not -MAX_CENTS <= value <= MAX_CENTS:
        raise ValueError("Cents must fit in 64 bits")
    return value


Cents = NewType("Cents", int)

SCALARS: dict[object, ScalarDefinition] = {
    Cents: strawberry.scalar(
        name="Cents",
        description="Integer number of cents (may exceed 32 bits)",
        serialize=int,
        parse_value=_parse_cents,
    )
}
