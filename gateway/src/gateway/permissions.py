"""Field guards. ``Requires[Scope.X]``: an admin, or an API key with that scope. ``IsAdmin``: a signed-in
admin person (managing accounts and keys)."""

from functools import cache
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from gateway.scopes import Scope


class IsAdmin(BasePermission):
    """UNAUTHENTICATED without a valid credential, FORBIDDEN for anyone but a signed-in admin."""

    message = "This field needs a signed-in admin."

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        info.context.require_admin()  # raises the refusal with its own code
        return True


class IsSignedIn(BasePermission):
    """A signed-in person of any role (not an API key)."""

    message = "This field needs a signed-in account."

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        info.context.require_person()
        return True


@cache
def _requires(scope: Scope) -> type[BasePermission]:
    def has_permission(self: BasePermission, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        info.context.require(scope)
        return True

    name = "Requires" + "".join(part.title() for part in scope.name.split("_"))
    return type(
        name,
        (BasePermission,),
        {"message": f"This field needs {scope.value}.", "has_permission": has_permission},
    )


class _Requires:
    def __getitem__(self, scope: Scope) -> type[BasePermission]:
        return _requires(scope)


Requires = _Requires()
