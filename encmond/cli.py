"""The ``encmond`` command line.

``run`` and ``check`` apply gevent's monkey patching before anything imports
PyMySQL, so modules that touch the network are imported inside the commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from encmond import __version__
from encmond.errors import EX_CONFIG, EncmondError
from encmond.logs import LEVELS, setup_logging


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with EX_CONFIG (78)."""

    def error(self, message: str) -> None:
        raise UsageError(f"{message}; see '{self.prog} --help'")


def build_parser() -> Parser:
    parser = Parser(
        prog="encmond",
        description=(
            "Watch a MariaDB source replicating into an encrypted target: lag, data "
            "parity and cutover readiness."
        ),
    )
    parser.add_argument("--version", action="version", version=f"encmond {__version__}")
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default="INFO",
        help="lowest level of log lines written to stderr (default: INFO)",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser
    )
    commands.required = True

    def command(name: str, help: str) -> Parser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            help="configuration file (default: $ENCMOND_CONFIG, else "
            "/etc/encmond/config.yaml)",
        )
        return sub

    command("run", "run the daemon in the foreground until SIGTERM or SIGINT")
    check = command(
        "check",
        "run every enabled check once and print the results; "
        "exit 0 OK, 1 WARNING or UNKNOWN, 2 CRITICAL",
    )
    check.add_argument(
        "--json", action="store_true", help="print JSON instead of a table"
    )
    check.add_argument(
        "--only",
        metavar="CHECK",
        action="append",
        help="run only this check (repeat for several)",
    )
    cutover = command(
        "cutover",
        "run the checks the cutover verdict needs and print it with its reasons; "
        "exit 0 only on GO",
    )
    cutover.add_argument(
        "--json", action="store_true", help="print the full report as JSON"
    )
    cutover.add_argument(
        "--target",
        metavar="NAME",
        action="append",
        help="judge only this target (repeat for several; default: all)",
    )
    command(
        "plugins",
        "list loaded plugins, their checks and notifiers, and where each came from",
    )
    command("validate", "check the configuration without connecting to any server")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"encmond: error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.command in ("run", "check", "cutover"):
        from gevent import monkey

        monkey.patch_all()
    setup_logging(args.log_level)
    from encmond.config import config_path

    path = config_path(args.config)
    try:
        return COMMANDS[args.command](args, path)
    except EncmondError as exc:
        print(f"encmond: error: {exc}", file=sys.stderr)
        return EX_CONFIG


def run_command(args, path: str) -> int:
    from encmond.daemon import Daemon, load

    config, plugins = load(path)
    return Daemon(config, plugins).run()


def validate_command(args, path: str) -> int:
    from encmond.daemon import load

    config, plugins = load(path)
    checks = [name for name, settings in config.checks.items() if settings["enabled"]]
    print(f"configuration OK: {path}")
    print(f"  source: {config.source}")
    for target in config.targets.values():
        print(f"  target: {target}")
    print(f"  tables: {', '.join(str(t) for t in config.tables) or '(none)'}")
    print(f"  checks: {', '.join(checks) or '(none)'}")
    notifiers = [settings["name"] for settings in config.notifiers]
    print(f"  notifiers: {', '.join(notifiers) or '(none)'}")
    print(f"  storage: {config.storage['path']}")
    return 0


def plugins_command(args, path: str) -> int:
    from encmond.config import load_config
    from encmond.plugins_loader import load_plugins

    plugins = load_plugins(load_config(path).plugin_dirs)
    rows = [
        (
            info.name,
            info.origin,
            ", ".join(info.checks) or "-",
            ", ".join(info.notifiers) or "-",
        )
        for info in plugins.infos.values()
    ]
    print_table(("PLUGIN", "ORIGIN", "CHECKS", "NOTIFIERS"), rows)
    return 0


def check_command(args, path: str) -> int:
    from encmond.checkonce import run_once
    from encmond.daemon import load
    from encmond.model import Status

    config, plugins = load(path)
    results = run_once(config, plugins, args.only)
    status = Status.worst(result.status for result in results)
    if args.json:
        payload: dict[str, Any] = {
            "status": status.value,
            "results": [result.to_dict() for result in results],
        }
        print(json.dumps(payload, indent=2, default=str))
    else:
        rows = [
            (r.check, r.server, r.subject, r.status.value, r.message) for r in results
        ]
        print_table(("CHECK", "SERVER", "SUBJECT", "STATUS", "MESSAGE"), rows)
        print(f"\noverall: {status.value}")
    return status.exit_code


def cutover_command(args, path: str) -> int:
    from encmond.cutoveronce import render, run_cutover
    from encmond.daemon import load

    config, plugins = load(path)
    report = run_cutover(config, plugins, args.target)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render(report))
    return 0 if report["go"] else 1


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [
        max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)
    ]
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=True)
        ]
        print("  ".join(cells + [str(row[-1])]))


COMMANDS = {
    "run": run_command,
    "check": check_command,
    "cutover": cutover_command,
    "plugins": plugins_command,
    "validate": validate_command,
}
