from datetime import datetime

import strawberry

from gateway.api_keys import ApiKey as ApiKeyRecord
from gateway.auth import Account as AccountRecord
from gateway.errors import UserError
from gateway.scopes import DESCRIPTIONS, Scope, scopes_named


@strawberry.type
class LoginPayload:
    token: str | None = None
    expires_at: datetime | None = None
    errors: list[UserError]


@strawberry.type
class SignOutPayload:
    errors: list[UserError]


@strawberry.type(description="A person's account (admin or staff).")
class Account:
    username: str
    role: str
    created_at: datetime
    disabled_at: datetime | None

    @classmethod
    def from_record(cls, record: AccountRecord) -> "Account":
        return cls(
            username=record.username,
            role=record.role,
            created_at=record.created_at,
            disabled_at=record.disabled_at,
        )


@strawberry.type
class AccountPayload:
    account: Account | None = None
    errors: list[UserError]


@strawberry.type(description="An API key, as listed: never the key itself.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The key's public start, lsk_<prefix>_…, to tell keys apart.")
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="To the minute.")
    revoked_at: datetime | None

    @classmethod
    def from_record(cls, record: ApiKeyRecord) -> "ApiKey":
        return cls(
            id=strawberry.ID(str(record.id)),
            name=record.name,
            prefix=f"lsk_{record.prefix}",
            scopes=scopes_named(record.scopes),
            created_at=record.created_at,
            last_used_at=record.last_used_at,
            revoked_at=record.revoked_at,
        )


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey | None = None
    key: str | None = strawberry.field(
        default=None, description="The key, in full: shown this once (createApiKey only), stored nowhere."
    )
    errors: list[UserError]


@strawberry.type(description="A scope an API key can carry, with what it allows.")
class ApiKeyScope:
    scope: Scope
    name: str = strawberry.field(description='As written in logs and docs, e.g. "orders:read".')
    description: str

    @classmethod
    def all(cls) -> list["ApiKeyScope"]:
        return [cls(scope=scope, name=scope.value, description=DESCRIPTIONS[scope]) for scope in Scope]
