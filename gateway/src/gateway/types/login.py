from datetime import datetime

import strawberry

from gateway.errors import UserError


@strawberry.type
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    errors: list[UserError]
