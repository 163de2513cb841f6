"""Ids in the schema are the services' own ids (bigint), carried as GraphQL ID strings."""

MAX_ID = 2**63 - 1


def parse_id(raw: str | int) -> int | None:
    """The id as an int, or None when it cannot be one of ours (not digits, zero, beyond bigint)."""
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None
