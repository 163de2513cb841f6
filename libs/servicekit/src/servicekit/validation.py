"""Request checks every service needs before its own validation runs."""

import unicodedata
from email.message import Message
from typing import Annotated

from fastapi import Depends, Request
from pydantic import AfterValidator

from servicekit.errors import AppError

MAX_ID = 2**63 - 1  # PostgreSQL bigint


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class InvalidParameter(AppError):
    status = 422
    code = "validation_error"
    title = "Invalid request"


def _is_json(content_type: str) -> bool:
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """A request that carries a body must say it is JSON (415 otherwise, rather than a confusing 422)."""
    if request.method not in {"POST", "PUT", "PATCH"}:
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        if await request.body():
            raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
        return
    if not _is_json(content_type):
        raise UnsupportedMediaType(
            f"Content-Type {content_type[:100]!r} is not supported; send application/json."
        )


JsonBody = Depends(require_json_body)


def parse_id_list(raw: str, field: str, *, max_items: int = 100) -> list[int]:
    """Parse ``"1,2,3"`` into distinct positive ids, in the order given."""
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if not parts:
        raise InvalidParameter(f"'{field}' must list at least one id, e.g. {field}=1,2,3.", field=field)
    if len(parts) > max_items:
        raise InvalidParameter(f"'{field}' may list at most {max_items} ids; got {len(parts)}.", field=field)
    ids: list[int] = []
    for part in parts:
        if not (part.isascii() and part.isdigit()) or not 1 <= int(part) <= MAX_ID:
            raise InvalidParameter(
                f"'{field}' must be positive integer ids; {part[:30]!r} is not one.", field=field
            )
        if int(part) not in ids:
            ids.append(int(part))
    return ids


def reject_control_characters(value: str) -> str:
    """Names are shown to people: no NUL (PostgreSQL cannot store it), no other control characters."""
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters")
    return value


PlainText = Annotated[str, AfterValidator(reject_control_characters)]
