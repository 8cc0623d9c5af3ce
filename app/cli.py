"""The `tabletop` command: serve, migrate, admin accounts and scenario checks."""

import gc
import sys

# A server start builds some hundred thousand objects that live as long as the process (models,
# schemas, routes), and the collector, at its default thresholds, walks them again and again
# while they are built: about a tenth of the start. `serve` starts with it off; the server turns
# it back on with settings of its own once it runs (`app.main`).
if sys.argv[1:2] == ["serve"]:
    gc.disable()

import argparse
import getpass
import logging
import logging.config
import subprocess
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session

from app.auth import service as auth
from app.config import get_settings
from app.db import backup_database, make_engine, migrate
from app.errors import DomainError
from app.logs import logging_config
from app.scenarios.loader import ScenarioFileError, load_scenario_dir

MIN_PASSWORD_LENGTH = 8
log = logging.getLogger("tabletop")


def _read_password(*, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise SystemExit("The two passwords differ; nothing was changed.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(f"Use at least {MIN_PASSWORD_LENGTH} characters; nothing was changed.")
    return password


def _prepare(*, json_logs: bool = False) -> None:
    """Migrate, check the scenarios and make sure a facilitator can log in."""
    settings = get_settings()
    # With JSON logs, standard output carries nothing but JSON lines.
    say = log.info if json_logs else print
    migrate(settings.database_url)
    library = load_scenario_dir(settings.scenarios_dir)
    say(f"Loaded {len(library.all())} scenarios from {settings.scenarios_dir}/")
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        admin_password = (
            settings.admin_password.get_secret_value() if settings.admin_password else None
        )
        generated = auth.ensure_admin(session, password=admin_password)
    engine.dispose()
    if generated:
        # Printed once, on the console of whoever started the server; never logged. With JSON
        # logs standard output belongs to the log collector, so it goes to standard error.
        console = sys.stderr if json_logs else sys.stdout
        print("\n  First start: created facilitator 'admin' with password:\n", file=console)
        print(f"      {generated}\n", file=console)
        print("  Change it with `tabletop admin reset-password admin`.\n", file=console)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    log_format = get_settings().log_format
    log_config = logging_config(log_format)
    logging.config.dictConfig(log_config)
    json_logs = log_format == "json"
    _prepare(json_logs=json_logs)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    (log.info if json_logs else print)(
        f"Serving on http://{shown_host}:{args.port}/  (Ctrl+C to stop)"
    )
    if args.workers and args.workers > 1:
        gc.enable()  # this process only watches the workers, which start with their own
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=log_config,
        log_level="info",
        # AccessLog writes the access lines, without query strings.
        access_log=False,
        ws_per_message_deflate=False,
    )
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    migrate(get_settings().database_url)
    print("Database is at the newest schema.")
    return 0


def _with_session(action: str, args: argparse.Namespace) -> int:
    settings = get_settings()
    migrate(settings.database_url)
    password = _read_password(from_stdin=args.password_stdin)
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as session:
            if action == "add":
                auth.create_facilitator(session, username=args.name, password=password)
                print(f"Facilitator {args.name!r} added.")
            else:
                auth.reset_password(session, username=args.name, password=password)
                print(f"Password of {args.name!r} changed; their sessions were ended.")
    except DomainError as exc:
        print(exc.detail, file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def cmd_admin_add(args: argparse.Namespace) -> int:
    return _with_session("add", args)


def cmd_admin_reset(args: argparse.Namespace) -> int:
    return _with_session("reset", args)


def cmd_scenarios_validate(args: argparse.Namespace) -> int:
    directory = args.directory or get_settings().scenarios_dir
    try:
        library = load_scenario_dir(directory)
    except ScenarioFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for scenario_set in library.sets():
        print(f"{scenario_set.set_id}: {len(scenario_set.scenarios)} scenarios OK")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    destination: Path = args.path
    if destination.exists() and not args.force:
        print(f"{destination} exists; pass --force to overwrite it.", file=sys.stderr)
        return 1
    destination.unlink(missing_ok=True)
    try:
        backup_database(get_settings().database_url, destination)
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        print(f"Backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"Backed up to {destination} ({destination.stat().st_size} bytes).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabletop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, load scenarios and serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="apply pending migrations").set_defaults(func=cmd_migrate)

    admin = commands.add_parser("admin", help="facilitator accounts")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    for name, func, text in (
        ("add", cmd_admin_add, "add a facilitator"),
        ("reset-password", cmd_admin_reset, "set a new password"),
    ):
        sub = admin_commands.add_parser(name, help=text)
        sub.add_argument("name")
        sub.add_argument(
            "--password-stdin", action="store_true", help="read the password from stdin"
        )
        sub.set_defaults(func=func)

    backup = commands.add_parser("backup", help="copy the database while the server runs")
    backup.add_argument("path", type=Path)
    backup.add_argument("--force", action="store_true", help="overwrite an existing file")
    backup.set_defaults(func=cmd_backup)

    scenarios = commands.add_parser("scenarios", help="scenario files")
    scenario_commands = scenarios.add_subparsers(dest="scenarios_command", required=True)
    validate = scenario_commands.add_parser("validate", help="check every file in scenarios/")
    validate.add_argument("directory", nargs="?", type=Path)
    validate.set_defaults(func=cmd_scenarios_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ScenarioFileError as exc:
        print(
            f"error: {exc}\nThe server does not start on a broken scenario file.", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
