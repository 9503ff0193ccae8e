"""The ``encmond`` command line.

Each subcommand is one function ``(args, path) -> exit status`` and one
``Command`` line in ``COMMANDS``. Commands marked ``network`` get gevent's
monkey patching before anything imports PyMySQL, so modules that touch the
network are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from encmond import __version__
from encmond.errors import EX_CONFIG, EncmondError
from encmond.logs import LEVELS, setup_logging

CONFIG_HELP = (
    "YAML configuration file to read (default: $ENCMOND_CONFIG, else "
    "/etc/encmond/config.yaml)"
)
LOG_LEVEL_HELP = (
    "lowest severity of log lines written to stderr: DEBUG, INFO, WARNING or "
    "ERROR (default: INFO)"
)
EXIT_STATUS = (
    "exit status: 0 OK, 1 WARNING or UNKNOWN, 2 CRITICAL, 78 invalid usage or "
    "configuration"
)


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors exit with EX_CONFIG (78)."""

    def error(self, message: str) -> None:
        raise UsageError(f"{message}; see '{self.prog} --help'")


@dataclass(frozen=True)
class Option:
    """One command line option: ``add_argument``'s arguments."""

    flags: tuple[str, ...]
    settings: dict[str, Any]


JSON = Option(
    ("--json",),
    {"action": "store_true", "help": "print JSON on stdout instead of a table"},
)
ONLY = Option(
    ("--only",),
    {
        "metavar": "CHECK",
        "action": "append",
        "help": "run only this check, even when disabled in the configuration; "
        "repeat it or separate names with commas for several",
    },
)
CUTOVER_JSON = Option(
    ("--json",),
    {
        "action": "store_true",
        "help": "print the whole report as JSON: every fact behind the verdict "
        "with its time",
    },
)
TARGET = Option(
    ("--target",),
    {
        "metavar": "NAME",
        "action": "append",
        "help": "judge only this target (repeat for several; default: all)",
    },
)


@dataclass(frozen=True)
class Command:
    """A subcommand: its function, a help sentence and its own options.

    ``network`` commands connect to servers, so gevent patches the standard
    library before they run. ``epilog`` follows the options in ``--help``.
    """

    name: str
    function: Callable[[argparse.Namespace, str], int]
    help: str
    options: tuple[Option, ...] = ()
    network: bool = False
    epilog: str = ""


def build_parser(commands: Sequence[Command] | None = None) -> Parser:
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
        metavar="LEVEL",
        help=LOG_LEVEL_HELP,
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=Parser
    )
    subparsers.required = True
    for command in commands or COMMANDS:
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            epilog=command.epilog or None,
        )
        sub.add_argument("-c", "--config", metavar="FILE", help=CONFIG_HELP)
        # Accepted after the command too; SUPPRESS keeps the global value.
        sub.add_argument(
            "--log-level",
            choices=LEVELS,
            default=argparse.SUPPRESS,
            metavar="LEVEL",
            help=LOG_LEVEL_HELP,
        )
        for option in command.options:
            sub.add_argument(*option.flags, **option.settings)
        sub.set_defaults(command_spec=command)
    return parser


def patch_for_gevent() -> None:
    """Apply gevent's monkey patching, with one read of the entry points.

    ``patch_all`` looks up its plugin entry point groups about 30 times, and
    on Python 3.11 each lookup reads the metadata of every installed
    distribution. In the test virtual environment, with 103 distributions,
    that took 0.25 s of start-up under cProfile. Here the lookups select
    from one read instead.
    """
    import importlib.metadata

    from gevent import monkey

    lookup = importlib.metadata.entry_points
    every = lookup()
    importlib.metadata.entry_points = lambda **params: every.select(**params)
    try:
        monkey.patch_all()
    finally:
        importlib.metadata.entry_points = lookup


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"encmond: error: {exc}", file=sys.stderr)
        return EX_CONFIG
    command: Command = args.command_spec
    if command.network:
        patch_for_gevent()
    setup_logging(args.log_level)
    from encmond.config import config_path

    path = config_path(args.config)
    try:
        return command.function(args, path)
    except EncmondError as exc:
        print(f"encmond: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # The reader of stdout went away (``encmond plugins | head``).
        discard_stdout()
        return 0


def discard_stdout() -> None:
    """Send the rest of stdout to /dev/null, so the flush at exit cannot fail."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@contextmanager
def reader_may_leave() -> Iterator[None]:
    """Print a report whose exit status is already known, even into a closed pipe.

    With ``encmond cutover | head`` the reader may go away before the report
    is written. The command then still exits with its verdict, never 0 for
    NO-GO, because a runbook with ``set -o pipefail`` reads that status.
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()


def run_command(args, path: str) -> int:
    from encmond.daemon import Daemon
    from encmond.loading import load

    config, plugins = load(path)
    return Daemon(config, plugins).run()


def validate_command(args, path: str) -> int:
    from encmond.loading import load

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
    from encmond.config import DEFAULT_PLUGIN_DIR, load_config
    from encmond.plugins_loader import load_plugins

    if args.config is None and not os.path.exists(path):
        # Without a configuration file, list what loads from the defaults.
        plugin_dirs = [p for p in [Path(DEFAULT_PLUGIN_DIR)] if p.is_dir()]
    else:
        plugin_dirs = load_config(path).plugin_dirs
    plugins = load_plugins(plugin_dirs)
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
    from encmond.loading import load
    from encmond.model import Status

    config, plugins = load(path)
    only = split_names(args.only)
    results = run_once(config, plugins, only)
    status = Status.worst(result.status for result in results)
    counts = {s.value: sum(r.status is s for r in results) for s in Status}
    with reader_may_leave():
        if args.json:
            payload: dict[str, Any] = {
                "status": status.value,
                "counts": counts,
                "results": [result.to_dict() for result in results],
            }
            print(json.dumps(payload, indent=2, default=str))
        else:
            print_results(results, status, counts)
    return status.exit_code


def print_results(results, status, counts: dict[str, int]) -> None:
    rows = [(r.check, r.server, r.subject, r.status.value, r.message) for r in results]
    print_table(("CHECK", "SERVER", "SUBJECT", "STATUS", "MESSAGE"), rows)
    summary = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    print(f"\n{status.value}: {summary or 'no results'}")


def split_names(values: list[str] | None) -> list[str] | None:
    """Turn repeated and comma-separated ``--only`` values into one list."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",")]
    return [name for name in names if name]


def cutover_command(args, path: str) -> int:
    from encmond.cutoveronce import render, run_cutover
    from encmond.loading import load

    config, plugins = load(path)
    report = run_cutover(config, plugins, args.target)
    with reader_may_leave():
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            print(render(report))
    return 0 if report["go"] else 1


def print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print left-aligned columns; the last one is not padded, as it may be long."""
    widths = [
        max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)
    ]
    for row in [header, *rows]:
        cells = [
            str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=True)
        ]
        print("  ".join(cells + [str(row[-1])]))


COMMANDS = (
    Command(
        "run",
        run_command,
        "run the daemon in the foreground: SIGHUP reloads the configuration, "
        "SIGTERM or SIGINT stops it",
        network=True,
        epilog="exit status: 0 after a clean stop, 1 when it cannot start, "
        "78 invalid configuration",
    ),
    Command(
        "check",
        check_command,
        "run every enabled check once and print the results",
        options=(JSON, ONLY),
        network=True,
        epilog=EXIT_STATUS,
    ),
    Command(
        "cutover",
        cutover_command,
        "run the checks the cutover verdict needs and print the verdict with "
        "every reason",
        options=(CUTOVER_JSON, TARGET),
        network=True,
        epilog="exit status: 0 GO, 1 NO-GO, 78 invalid configuration",
    ),
    Command(
        "plugins",
        plugins_command,
        "list loaded plugins, their checks and notifiers, and where each came from",
        epilog="exit status: 0 listed, 78 invalid configuration or plugin",
    ),
    Command(
        "validate",
        validate_command,
        "check the configuration without connecting to any server",
        epilog="exit status: 0 valid, 78 invalid",
    ),
)
