"""The pages for who may use the back office: your password, the accounts, and API keys for integrations.
Same rules as routes.py: a session for every page, a CSRF-checked form, POST-redirect-GET, bad input answered
next to its field. Changing a password, disabling an account and revoking a key take effect at the gateway
at once (ADR 0010)."""

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from admin.gateway import AdminGateway
from admin.routes import AdminDep, _place_errors, _text, not_found, redirect, render
from admin.session import checked_form, flash, sign_in, signed_in_user
from servicekit.rules import MAX_API_KEY_NAME, MAX_PASSWORD, MIN_PASSWORD

router = APIRouter()

# The gateway's rules (servicekit.rules), for the forms' own attributes and the messages next to the fields.
_PASSWORD_BOUNDS = {"min_password": MIN_PASSWORD, "max_password": MAX_PASSWORD}

_ID = re.compile(r"[0-9]{1,18}")


# --- Your password -----------------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, gateway: AdminDep) -> Response:
    return render(request, "account.html", {"errors": {}, **_PASSWORD_BOUNDS})


@router.post("/account/password", response_class=HTMLResponse)
async def change_password_submit(request: Request, gateway: AdminDep) -> Response:
    form = await checked_form(request)
    current, new, again = _text(form, "current"), _text(form, "new"), _text(form, "again")
    errors: dict[str, str] = {}
    if not current:
        errors["current"] = "Enter your current password."
    if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
        errors["new"] = f"Choose a password of {MIN_PASSWORD} to {MAX_PASSWORD:,} characters."
    elif new != again:
        errors["again"] = "The two new passwords differ."
    if not errors:
        result = await gateway.change_password(current, new)
        if result.token is not None:
            # The gateway ended every session of this account, this one included: keep working on the new one.
            sign_in(request, token=result.token, username=signed_in_user(request) or "")
            flash(request, "Password changed. Every other session of this account has been signed out.")
            return redirect("/account")
        for error in result.errors:
            if error.code == "INVALID_CREDENTIALS":
                errors["current"] = "That is not your current password."
            else:
                errors["new"] = error.message
    return render(request, "account.html", {"errors": errors, **_PASSWORD_BOUNDS}, status_code=422)


# --- Accounts ----------------------------------------------------------------------------------------------


@router.get("/accounts", response_class=HTMLResponse)
async def accounts_page(request: Request, gateway: AdminDep) -> Response:
    return render(request, "accounts.html", {"accounts": await gateway.accounts()})


@router.post("/accounts/disabled")
async def set_disabled_submit(request: Request, gateway: AdminDep) -> Response:
    form = await checked_form(request)
    username, disabled = _text(form, "username"), _text(form, "disabled") == "true"
    errors = await gateway.set_account_disabled(username, disabled)
    if any(error.code == "NOT_FOUND" for error in errors):
        return not_found(request, "Account")
    if errors:
        flash(request, " ".join(error.message for error in errors), "error")
    elif disabled:
        flash(request, f"{username} is disabled: signed out everywhere, and cannot sign in.")
    else:
        flash(request, f"{username} can sign in again.")
    return redirect("/accounts")


# --- API keys ----------------------------------------------------------------------------------------------


async def _keys_context(gateway: AdminGateway, **overrides: Any) -> dict[str, Any]:
    keys, scopes = await gateway.api_keys()
    context: dict[str, Any] = {
        "keys": keys,
        "scopes": scopes,
        "values": {"name": "", "scopes": []},
        "errors": {},
        "problems": [],
        "max_name": MAX_API_KEY_NAME,
    }
    context.update(overrides)
    return context


@router.get("/api-keys", response_class=HTMLResponse)
async def api_keys_page(request: Request, gateway: AdminDep) -> Response:
    return render(request, "api_keys.html", await _keys_context(gateway))


@router.post("/api-keys", response_class=HTMLResponse)
async def create_api_key_submit(request: Request, gateway: AdminDep) -> Response:
    """Answered with the page itself, not a redirect: the key is in this answer only (never in the session
    cookie, which is signed, not encrypted), and the admin copies it from here."""
    form = await checked_form(request)
    name = _text(form, "name").strip()
    chosen = [value for value in form.getlist("scopes") if isinstance(value, str)]
    _, scopes = await gateway.api_keys()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = "Name the key after what will use it, e.g. “warehouse sync”."
    elif len(name) > MAX_API_KEY_NAME or not name.isprintable():
        errors["name"] = f"At most {MAX_API_KEY_NAME} printable characters."
    if not chosen:
        errors["scopes"] = "Choose at least one scope."
    elif not set(chosen) <= {scope.scope for scope in scopes}:
        errors["scopes"] = "Choose scopes from the list."
    problems: list[str] = []
    if not errors:
        result = await gateway.create_api_key(name, sorted(set(chosen)))
        if result.api_key is not None and result.key and not result.errors:
            context = await _keys_context(gateway, created=result.api_key, key=result.key)
            return render(request, "api_keys.html", context, status_code=201)
        errors, problems = _place_errors(result.errors, {"name", "scopes"})
    values = {"name": name, "scopes": chosen}
    context = await _keys_context(gateway, values=values, errors=errors, problems=problems)
    return render(request, "api_keys.html", context, status_code=422)


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key_submit(request: Request, gateway: AdminDep, key_id: str) -> Response:
    await checked_form(request)
    errors = await gateway.revoke_api_key(key_id) if _ID.fullmatch(key_id) else None
    if errors is None or any(error.code == "NOT_FOUND" for error in errors):
        return not_found(request, "API key")
    flash(request, f"API key #{key_id} revoked: it is refused from now on.")
    return redirect("/api-keys")
