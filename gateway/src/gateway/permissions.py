from typing import Any

import strawberry
from strawberry.permission import BasePermission


class IsAdmin(BasePermission):
    """Admin-only fields: UNAUTHENTICATED without a valid token, FORBIDDEN without the admin role."""

    message = "This field needs the admin role."

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        info.context.require_admin()  # raises the refusal with its own code
        return True
