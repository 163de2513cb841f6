"""What the admin's HTTP tests share: an admin app of a test's own, signed in over real HTTP."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.testing import LiveServer, csrf_token

SignedInAdmin = Callable[[str, str], AbstractContextManager[httpx.Client]]


@pytest.fixture(scope="session")
def signed_in_admin(
    admin_credentials: tuple[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> SignedInAdmin:
    """``with signed_in_admin(gateway_url, secret_key) as client``: an admin of its own in front of the
    gateway at ``gateway_url`` (…/graphql), and an httpx client signed in to it with the suite's admin account
    (its cookie not Secure: httpx keeps Secure cookies to https), cookies kept, redirects not followed. The
    admin calls the gateway with its credential."""

    @contextmanager
    def signed_in(gateway_url: str, secret_key: str) -> Iterator[httpx.Client]:
        settings = AdminSettings(
            gateway_url=gateway_url,
            secret_key=secret_key,
            cookie_secure=False,
            **credential_settings("admin"),
        )
        with (
            LiveServer(create_app(settings)) as server,
            httpx.Client(base_url=server.url, timeout=30) as client,
        ):
            username, password = admin_credentials
            form = {
                "csrf_token": csrf_token(client.get("/sign-in").text),
                "username": username,
                "password": password,
            }
            signed = client.post("/sign-in", data={**form, "next": "/"})
            assert signed.status_code == 303, signed.text[:500]
            yield client

    return signed_in
