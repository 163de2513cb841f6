"""pytest plugin (loaded with ``-p devstack.testing``): a real PostgreSQL per test run, and live servers.

- ``postgres_admin_url``: a superuser URL to a throwaway embedded PostgreSQL, or to ``TEST_DATABASE_URL``'s
  server when that is set. Either way each run works in a database of its own, dropped at the end.
- ``LiveServer``: an ASGI app served by uvicorn on a free loopback port in a background thread, so tests talk
  real HTTP to it and concurrent requests are really concurrent.
"""

import asyncio
import fnmatch
import html
import importlib.util
import json
import os
import re
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import asyncpg
import pytest
import uvicorn
from starlette.types import ASGIApp

from devstack.embedded import EmbeddedPostgres, free_port
from servicekit.db import plain_url, with_database
from servicekit.sync import run_sync

T = TypeVar("T")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Superuser URL of the server the run uses (its ``postgres`` database)."""
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        yield plain_url(external)
        return
    # A short path: PostgreSQL's socket path must fit in 107 bytes.
    data_dir = Path(tempfile.mkdtemp(prefix="lspg-"))
    server = EmbeddedPostgres(data_dir, free_port(), durable=False)
    try:
        yield server.start()
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_admin_url(postgres_server_url: str) -> Iterator[str]:
    """Superuser URL of a fresh database for this run, dropped afterwards."""
    name = f"lockstock_test_{uuid.uuid4().hex[:10]}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(postgres_server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_sync(run(f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(postgres_server_url, name)
    finally:
        run_sync(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# The unit tier: pure tests (no PostgreSQL, no server), each module marked ``pytestmark = pytest.mark.unit``
# and run alone by `task test:unit` (pytest -m unit).
UNIT_MARK = re.compile(r"\bmark\.unit\b")


def _mentions_unit(path: Path) -> bool:
    try:
        return bool(UNIT_MARK.search(path.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return True  # unreadable: let pytest collect it and say what is wrong


_UNIT_DIRS = pytest.StashKey[dict[Path, bool]]()


def _skipped_dir(name: str, config: pytest.Config) -> bool:
    """A directory pytest never recurses into (norecursedirs: .venv, .git, caches, build, ...)."""
    return name == "__pycache__" or any(fnmatch.fnmatch(name, p) for p in config.getini("norecursedirs"))


def _is_test_file(name: str, python_files: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in python_files)


def _holds_unit_tests(directory: Path, config: pytest.Config) -> bool:
    """Whether any test module under ``directory`` names the unit mark (one walk per tree, remembered for
    every directory in it)."""
    known = config.stash.setdefault(_UNIT_DIRS, {})
    if directory not in known:
        python_files = config.getini("python_files")
        for parent, dirs, files in os.walk(directory):
            dirs[:] = [d for d in dirs if not _skipped_dir(d, config)]
            here = Path(parent)
            known.setdefault(here, False)
            if any(_is_test_file(name, python_files) and _mentions_unit(here / name) for name in files):
                for holder in (here, *here.parents):
                    known[holder] = True
                    if holder == directory:
                        break
    return known.get(directory, False)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under ``-m unit`` alone, skip the test modules that never name the unit mark, and the directories
    holding none (their conftests, whole apps and live systems), instead of importing the whole suite only
    to deselect it: the unit tier costs its own tests. An optimisation, never a filter: ``-m`` still picks
    the tests, and any other marker expression collects as usual."""
    if (config.option.markexpr or "").strip() != "unit":
        return None
    if collection_path.is_dir():
        if _skipped_dir(collection_path.name, config):
            return None  # pytest's own norecursedirs (.venv, caches) decide
        return None if _holds_unit_tests(collection_path, config) else True
    if _is_test_file(collection_path.name, config.getini("python_files")):
        return None if _mentions_unit(collection_path) else True
    return None


class LiveServer:
    """Serve ``app`` on 127.0.0.1 at a free port in a daemon thread (with its own event loop)."""

    def __init__(self, app: ASGIApp, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            lifespan="on",
            access_log=False,
            # As every app runs (Procfile, Dockerfile): uvicorn would otherwise believe X-Forwarded-For from
            # 127.0.0.1, which is every local program. Client addresses are the apps' own business.
            proxy_headers=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"live-{self.port}")

    def __enter__(self) -> "LiveServer":
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            return bool(self.server.started)

        wait_for_sync(started, within_s=30, what=f"the server on port {self.port} to start", every_s=0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def wait_for_port(port: int, timeout: float = 10) -> None:
    def listening() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for_sync(listening, within_s=timeout, what=f"something to listen on {port}", every_s=0.02)


def fuzz_openapi(
    base_url: str, *, headers: dict[str, str] | None = None, max_examples: int = 40
) -> list[str]:
    """Drive every operation of the service's own OpenAPI with schemathesis-generated requests (valid and
    invalid) over real HTTP, sending ``headers`` (a caller's credential) with each. Checks: no 5xx,
    documented status codes and content types, and responses that match the published schemas. Returns the
    operations exercised."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", headers=headers)
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema fails loudly here, as it should

        @given(case=operation.as_strategy())
        @settings(
            max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case: "schemathesis.Case[Any]") -> None:
            case.call_and_validate(base_url=base_url, headers=headers, checks=checks, timeout=30)

        run()
        exercised.append(operation.label)
    return exercised


def screenshot_dir(repo_root: Path) -> Path:
    """Where browser tests save their screenshots: the README's set in docs/screenshots when
    UPDATE_SCREENSHOTS=1 (`task screenshots`), otherwise test-results/screenshots, so an ordinary test run
    leaves the working tree clean."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = repo_root / "docs" / "screenshots"
    else:
        target = repo_root / "test-results" / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target


Description = str | Callable[[], str]


def _timed_out(within_s: float, what: Description) -> TimeoutError:
    return TimeoutError(f"waited {within_s:g} s for {what() if callable(what) else what}")


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within_s: float = 10,
    what: Description = "the condition",
    every_s: float = 0.01,
) -> T:
    """Await ``probe`` every ``every_s`` until it yields a truthy value, and return that value; past
    ``within_s`` raise TimeoutError naming ``what`` (a string, or a callable asked at the deadline, so the
    message can say what was last seen). Tests never sleep a guessed time: they poll with a deadline.

    A probe says "not yet" with None (or anything falsy: False, 0, an empty list), so a probe that returns
    a bool is a predicate; an exception or a failed assertion inside it fails at once."""
    deadline = time.monotonic() + within_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(within_s, what)
        await asyncio.sleep(every_s)


def wait_for_sync(
    probe: Callable[[], T | None],
    *,
    within_s: float = 10,
    what: Description = "the condition",
    every_s: float = 0.01,
) -> T:
    """wait_for for code that cannot await: Playwright's sync API in browser tests, threads, subprocesses."""
    deadline = time.monotonic() + within_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(within_s, what)
        time.sleep(every_s)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within_s: float = 10, *, what: Description = "the condition"
) -> None:
    """Poll ``predicate`` until it is true: wait_for for a probe that only says yes or no."""
    await wait_for(predicate, within_s=within_s, what=what)


def log_events(out: str) -> list[dict[str, Any]]:
    """Every JSON event in captured output (threads printing at once can share a physical line)."""
    decoder = json.JSONDecoder()
    events = []
    for line in out.splitlines():
        position = line.find("{")
        while position != -1:
            event, end = decoder.raw_decode(line, position)
            events.append(event)
            position = line.find("{", end)
    return events


def guarded_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of ``app`` a caller needs a credential for (all but health and metrics):
    its OpenAPI operations and its plain routes (the docs), path parameters filled with 1. What a
    caller-refusal test walks, so a new route is covered by itself."""
    from starlette.routing import Route

    from servicekit.callers import OPEN_PATHS

    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    }
    routes |= {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    return sorted(
        (method, re.sub(r"\{[^}]+\}", "1", path)) for method, path in routes if path not in OPEN_PATHS
    )


async def schema_fingerprint(conn: asyncpg.Connection, schema: str) -> dict[str, str]:
    """An md5 of every row of every table in ``schema``: equal before and after means nothing changed."""
    fingerprint = {}
    for table in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema):
        name = f'"{schema}"."{table["tablename"]}"'
        fingerprint[name] = await conn.fetchval(
            f"SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {name} t"
        )
    return fingerprint


CALLING_APPS = ("gateway", "orders", "web", "admin")


def forged_credentials(tokens: dict[str, str], genuine: str) -> dict[str, dict[str, str]]:
    """Headers, by a name for the test id, that must not pass for ``genuine``'s credential: none, a made-up
    token, ``genuine``'s token in the wrong scheme, in the wrong header or one character off, and each other
    calling app's own token (``"<app>'s token"``)."""
    token = tokens[genuine]
    return {
        "no credential": {},
        "made-up token": {"Authorization": "Bearer not-a-credential"},
        "wrong scheme": {"Authorization": f"Basic {token}"},
        "one character off": {"Authorization": f"Bearer {token[:-1]}{'x' if token[-1] != 'x' else 'y'}"},
        "wrong header": {"X-Lockstock-Caller": token},
        **{f"{app}'s token": {"Authorization": f"Bearer {tokens[app]}"} for app in tokens if app != genuine},
    }


def forged_credential_names(genuine: str) -> list[str]:
    """The names forged_credentials gives (for a hypothesis strategy, before the tokens exist)."""
    return sorted(forged_credentials(dict.fromkeys(CALLING_APPS, "token"), genuine))


_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(page: str) -> str:
    """The CSRF token of the first form in a page the shop or the admin served (its hidden csrf_token field),
    for a test that posts the form over plain HTTP."""
    found = _CSRF_FIELD.search(page)
    assert found, page[:500]
    return html.unescape(found.group(1))


def query_row(admin_url: str, sql: str) -> tuple[Any, ...]:
    """One row of ``sql`` over a fresh superuser connection, from sync code (a hypothesis test's snapshot of
    row counts before and after a request)."""

    async def fetch() -> tuple[Any, ...]:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:
            return tuple(await conn.fetchrow(sql) or ())
        finally:
            await conn.close()

    return run_sync(fetch())


def closed_port_database_url(url: str) -> str:
    """``url`` pointed at a loopback port nothing listens on: a database that is down."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{free_port()}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


def load_module(path: Path, name: str) -> ModuleType:
    """The Python file at ``path`` as a module named ``name``: how one app's tests reuse another's conftest
    (its fixtures and helpers), which cannot be imported by name under --import-mode=importlib."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, path
    assert spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale_graphql_client(member: Path, package: str, out: Path) -> str | None:
    """What differs between a UI's committed GraphQL client (``member``/src/``package``/graphql_client, made
    by ``uv run task codegen``) and the same [tool.ariadne-codegen] of ``member``/pyproject.toml run again
    into ``out``: None when nothing does, else the stale files and their diff. It runs ariadne-codegen the way
    the task does, in tools/codegen's own environment (made on first use: uv, and PyPI that first time)."""
    import difflib
    import shutil
    import subprocess

    uv = shutil.which("uv")
    assert uv, "uv is needed to regenerate the GraphQL clients (tools/codegen has an environment of its own)"
    # The member's own configuration, generating into `out`: every other path in it (and so every "Source:"
    # comment in the code) is the same, relative to the member.
    target = f'target_package_path = "src/{package}"'
    config = (member / "pyproject.toml").read_text()
    assert config.count(target) == 1, f"{member.name}/pyproject.toml no longer says {target}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pyproject.toml").write_text(config.replace(target, f"target_package_path = {str(out)!r}"))
    generated = subprocess.run(
        [
            *(uv, "run", "--project", str(member.parent / "tools" / "codegen"), "--frozen", "--quiet"),
            *("ariadne-codegen", "--config", str(out / "pyproject.toml"), "client"),
        ],
        cwd=member,
        env={name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr

    def files(directory: Path) -> dict[str, str]:
        return {path.name: path.read_text() for path in sorted(directory.glob("*.py"))}

    fresh = files(out / "graphql_client")
    committed = files(member / "src" / package / "graphql_client")
    assert fresh, generated.stdout
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    if not stale:
        return None
    diff = "".join(
        "".join(
            difflib.unified_diff(
                committed.get(name, "").splitlines(keepends=True),
                fresh.get(name, "").splitlines(keepends=True),
                f"committed/{name}",
                f"generated/{name}",
            )
        )
        for name in stale
    )
    return f"{', '.join(stale)}\n{diff[:4000]}"
