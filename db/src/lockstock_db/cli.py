"""lockstock-db: migrate, seed, reset, url and set-role-passwords against the server in DATABASE_URL.

DATABASE_URL's role must be able to create schemas and roles. This is what the migrate job of the
production images runs; on a developer machine `task db:migrate` (and the rest) run the same commands
through `lockstock-dev`, which supplies the embedded PostgreSQL under .data/ when DATABASE_URL is unset.
"""

import argparse
import os
import sys

from lockstock_db import database

# The commands that work on a database, in the order `--help` lists them, with their help.
COMMANDS = {
    "migrate": "apply every migration",
    "seed": "insert the demo catalogue (safe to rerun)",
    "reset": "drop all lockstock schemas, migrate and seed again",
    "url": "print the superuser URL of the lockstock database",
    "set-role-passwords": (
        "set each service role's password from <SERVICE>_DB_PASSWORD (e.g. ORDERS_DB_PASSWORD)"
    ),
}


def run(command: str, admin_url: str) -> int:
    """Run one of COMMANDS against ``admin_url`` (a superuser URL of the lockstock database)."""
    if command == "migrate":
        database.migrate(admin_url)
    elif command == "seed":
        database.seed(admin_url)
    elif command == "reset":
        database.reset(admin_url)
        database.migrate(admin_url)
        database.seed(admin_url)
    elif command == "url":
        print(admin_url)
    elif command == "set-role-passwords":
        return set_role_passwords_from_env(admin_url)
    else:
        raise ValueError(f"unknown command {command!r}")
    return 0


def set_role_passwords_from_env(admin_url: str) -> int:
    """Containers get their role passwords from the environment (compose's .env), not from .data/."""
    variables = {role: f"{service.upper()}_DB_PASSWORD" for service, role in database.SERVICE_ROLES.items()}
    missing = [name for name in variables.values() if not os.environ.get(name)]
    if missing:
        print(f"set-role-passwords: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    database.apply_role_passwords(admin_url, {role: os.environ[name] for role, name in variables.items()})
    print(f"passwords set for {', '.join(variables)}", flush=True)
    return 0


def parser(
    prog: str, description: str | None, extra: dict[str, str] | None = None
) -> argparse.ArgumentParser:
    """The command line of COMMANDS and ``extra`` ones (lockstock-dev adds `up`)."""
    result = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = result.add_subparsers(dest="command", required=True)
    for name, help_text in (COMMANDS | (extra or {})).items():
        sub.add_parser(name, help=help_text)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parser("lockstock-db", __doc__).parse_args(argv)
    url = os.environ.get("DATABASE_URL")
    if not url:
        print(
            "lockstock-db: set DATABASE_URL to a superuser URL of the lockstock database"
            " (on a developer machine, `task db:migrate` and friends use the embedded one)",
            file=sys.stderr,
        )
        return 2
    return run(args.command, url)


if __name__ == "__main__":
    sys.exit(main())
