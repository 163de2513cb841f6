# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with arguments are typed as returning Any, so every resolver would be flagged.)
"""Signing in and out, passwords, accounts and API keys (ADR 0010). schema.py joins these into the roots.

A sign-in is a server-side session named by the token, so signOut, changePassword and disabling an account
end tokens at once. Only a signed-in admin (a person, not a key) manages accounts and keys."""

import strawberry
import structlog

from gateway.api_keys import create_key, list_keys, revoke_key
from gateway.auth import (
    MAX_USERNAME,
    WrongPassword,
    authenticate,
    change_password,
    list_accounts,
    set_account_disabled,
)
from gateway.context import Context
from gateway.errors import ErrorCode, UserError, invalid_input, no_such
from gateway.ids import parse_id
from gateway.permissions import IsAdmin, IsSignedIn
from gateway.scopes import Scope
from gateway.types.login import (
    Account,
    AccountPayload,
    ApiKey,
    ApiKeyPayload,
    ApiKeyScope,
    LoginPayload,
    SignOutPayload,
)
from servicekit.rules import MAX_API_KEY_NAME

log = structlog.get_logger()


@strawberry.type
class AccountsQuery:
    @strawberry.field(permission_classes=[IsAdmin], description="Signed-in admin only. By username.")
    async def accounts(self, info: strawberry.Info[Context, None]) -> list[Account]:
        return [Account.from_record(record) for record in await list_accounts(info.context.engine)]

    @strawberry.field(permission_classes=[IsAdmin], description="Signed-in admin only. Newest first.")
    async def api_keys(self, info: strawberry.Info[Context, None]) -> list[ApiKey]:
        return [ApiKey.from_record(record) for record in await list_keys(info.context.engine)]

    @strawberry.field(permission_classes=[IsAdmin], description="Signed-in admin only. What keys can carry.")
    def api_key_scopes(self) -> list[ApiKeyScope]:
        return ApiKeyScope.all()


@strawberry.type
class AccountsMutation:
    @strawberry.mutation(description="Sign in; the token goes in 'Authorization: Bearer …'.")
    async def login(self, info: strawberry.Info[Context, None], username: str, password: str) -> LoginPayload:
        context = info.context
        limits = context.limits
        client = context.client_address
        await limits.hit(limits.login, "login", client)
        name = username[: MAX_USERNAME + 1]  # longer ones are wrong anyway; keep keys and logs small
        await limits.claim_sign_in_attempt(name, client)
        principal = await authenticate(context.engine, name, password)
        if principal is None:
            log.info("login_failed", username=name, client=client)
            return LoginPayload(
                errors=[UserError(code=ErrorCode.INVALID_CREDENTIALS, message="Wrong username or password.")]
            )
        await limits.forget_sign_in_attempts(name, client)
        token, expires_at = await context.tokens.issue(context.engine, principal)
        log.info("login_succeeded", username=principal.username, role=principal.role)
        return LoginPayload(token=token, expires_at=expires_at, errors=[])

    @strawberry.mutation(
        permission_classes=[IsSignedIn],
        description="End this sign-in's token at once; everywhere: true ends every session of the account.",
    )
    async def sign_out(
        self, info: strawberry.Info[Context, None], everywhere: bool = False
    ) -> SignOutPayload:
        context = info.context
        principal = context.require_person()
        await context.tokens.revoke(context.engine, principal, everywhere=everywhere)
        log.info("signed_out", username=principal.username, everywhere=everywhere)
        return SignOutPayload(errors=[])

    @strawberry.mutation(
        permission_classes=[IsSignedIn],
        description="Change the signed-in account's password. Ends every session of the account and answers "
        "a new token for this one.",
    )
    async def change_password(
        self, info: strawberry.Info[Context, None], current_password: str, new_password: str
    ) -> LoginPayload:
        context = info.context
        principal = context.require_person()
        # A stolen token must not make a password oracle: the same throttle as sign-in guards the current one.
        await context.limits.claim_sign_in_attempt(principal.username, context.client_address)
        try:
            await change_password(context.engine, principal, current_password, new_password)
        except WrongPassword:
            return LoginPayload(
                errors=[
                    UserError(
                        code=ErrorCode.INVALID_CREDENTIALS,
                        field="currentPassword",
                        message="The current password is wrong.",
                    )
                ]
            )
        except ValueError as exc:
            return LoginPayload(errors=[invalid_input("newPassword", str(exc))])
        await context.limits.forget_sign_in_attempts(principal.username, context.client_address)
        token, expires_at = await context.tokens.issue(context.engine, principal)
        return LoginPayload(token=token, expires_at=expires_at, errors=[])

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Signed-in admin only. Disable an account (its tokens end at once; it cannot sign in) or "
        "enable it again. An admin cannot disable themselves.",
    )
    async def set_account_disabled(
        self, info: strawberry.Info[Context, None], username: str, disabled: bool
    ) -> AccountPayload:
        context = info.context
        admin = context.require_admin()
        if disabled and username == admin.username:
            return AccountPayload(errors=[invalid_input("username", "You cannot disable your own account.")])
        record = await set_account_disabled(
            context.engine, username[: MAX_USERNAME + 1], disabled, by=admin.username
        )
        if record is None:
            return AccountPayload(errors=no_such("username", "account"))
        return AccountPayload(account=Account.from_record(record), errors=[])

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Signed-in admin only. A new API key with these scopes; the answer's key is shown once.",
    )
    async def create_api_key(
        self, info: strawberry.Info[Context, None], name: str, scopes: list[Scope]
    ) -> ApiKeyPayload:
        context = info.context
        admin = context.require_admin()
        errors = []
        name = name.strip()
        if not 1 <= len(name) <= MAX_API_KEY_NAME or not name.isprintable():
            errors.append(
                invalid_input("name", f"Give the key a name of 1 to {MAX_API_KEY_NAME} printable characters.")
            )
        if not scopes:
            errors.append(invalid_input("scopes", "Choose at least one scope."))
        if errors:
            return ApiKeyPayload(errors=errors)
        record, key = await create_key(context.engine, name, scopes, admin.account_id, by=admin.username)
        return ApiKeyPayload(api_key=ApiKey.from_record(record), key=key, errors=[])

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Signed-in admin only. Revoke an API key: it is refused from the next request on.",
    )
    async def revoke_api_key(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> ApiKeyPayload:  # noqa: A002
        context = info.context
        admin = context.require_admin()
        key_id = parse_id(id)
        record = await revoke_key(context.engine, key_id, by=admin.username) if key_id is not None else None
        if record is None:
            return ApiKeyPayload(errors=no_such("id", "API key"))
        return ApiKeyPayload(api_key=ApiKey.from_record(record), errors=[])
