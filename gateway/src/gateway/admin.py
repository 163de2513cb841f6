"""`python -m gateway.admin create --username X` (what `task admin:create` runs), and
`python -m gateway.admin disable|enable --username X` (disabling ends the account's tokens at once).

The password is prompted for (twice), or read from stdin with --password-stdin. The account is written with
the gateway's own database role: GATEWAY_DATABASE_URL, or, for the embedded database of `task up`, the
gateway_svc password kept under .data/.
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
from pathlib import Path

from gateway.auth import ROLES, AccountExists, Role, create_account, set_account_disabled
from gateway.settings import GatewaySettings
from servicekit.db import create_engine

EMBEDDED_URL = "postgresql+asyncpg://gateway_svc:{password}@127.0.0.1:{port}/lockstock"


def database_url() -> str:
    if url := os.environ.get("GATEWAY_DATABASE_URL"):
        return url
    data_dir = Path(os.environ.get("LOCKSTOCK_DATA_DIR", ".data"))
    passwords = data_dir / "role-passwords.json"
    if not passwords.exists():
        raise SystemExit(
            "Set GATEWAY_DATABASE_URL, or run `task up` first (it keeps the role passwords in .data/)."
        )
    password = json.loads(passwords.read_text())["gateway_svc"]
    return EMBEDDED_URL.format(password=password, port=os.environ.get("LOCKSTOCK_PG_PORT", "54329"))


async def _create(url: str, username: str, password: str, role: Role) -> None:
    engine = create_engine(GatewaySettings(database_url=url))
    try:
        await create_account(engine, username, password, role)
    finally:
        await engine.dispose()


async def _set_disabled(url: str, username: str, disabled: bool) -> bool:
    engine = create_engine(GatewaySettings(database_url=url))
    try:
        return await set_account_disabled(engine, username, disabled, by="command line") is not None
    finally:
        await engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("The passwords differ.")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.admin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an account")
    create.add_argument("--username", required=True)
    create.add_argument("--role", choices=ROLES, default="admin")
    create.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    for name, text in (("disable", "disable an account, ending its tokens"), ("enable", "enable it again")):
        sub.add_parser(name, help=text).add_argument("--username", required=True)
    args = parser.parse_args(argv)

    if args.command in ("disable", "enable"):
        if not asyncio.run(_set_disabled(database_url(), args.username, args.command == "disable")):
            print(f"There is no account named {args.username!r}.", file=sys.stderr)
            return 1
        print(f"{args.command.capitalize()}d {args.username!r}.")
        return 0
    password = _read_password(args.password_stdin)
    try:
        asyncio.run(_create(database_url(), args.username, password, args.role))
    except AccountExists:
        print(f"An account named {args.username!r} exists already.", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(f"Created {args.role} {args.username!r}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
