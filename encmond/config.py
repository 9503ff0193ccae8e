"""Configuration: the YAML file, environment overrides and validation.

Loading happens in two steps. ``load_config`` reads the file, applies the
``SOURCE_DB_*``/``TARGET_DB_*`` environment overrides and validates every core
section. ``Config.bind_plugins`` then validates ``checks`` and ``notifiers``
against the options that the loaded plugins declare. Both steps raise
``ConfigError`` naming the file, line and key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from encmond.alert_policy import ALERT_SETTINGS, parse_table_overrides
from encmond.errors import ConfigError
from encmond.settings import (
    Located,
    Secret,
    Section,
    Setting,
    anything,
    at_least,
    boolean,
    choice,
    describe,
    duration,
    integer,
    list_of,
    optional_http_url,
    optional_string,
    password_text,
    plain_name,
    positive_duration,
    severity,
    string,
)

DEFAULT_PATH = "/etc/encmond/config.yaml"
DEFAULT_PLUGIN_DIR = "/etc/encmond/plugins.d"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

SSL = Section(
    {
        "ca": Setting(
            optional_string, None, "CA certificate file (PEM) to verify the server"
        ),
        "cert": Setting(optional_string, None, "client certificate file (PEM)"),
        "key": Setting(optional_string, None, "client private key file (PEM)"),
        "verify_cert": Setting(
            boolean, True, "verify the server certificate against ca"
        ),
        "verify_identity": Setting(
            boolean, False, "check that the certificate names the host"
        ),
    }
)

SERVER_SETTINGS = {
    "host": Setting(plain_name, help="host name or IP address of the server"),
    "port": Setting(integer(1, 65535), 3306, "TCP port"),
    "user": Setting(plain_name, help="monitoring user"),
    "password": Setting(password_text, None, "password (prefer password_file)"),
    "password_file": Setting(
        optional_string, None, "file whose first line is the password"
    ),
    "ssl": Setting(anything, None, "TLS settings: ca, cert, key, verify_*"),
    "platform": Setting(
        choice("auto", "mariadb", "rds"), "auto", "server platform, detected by auto"
    ),
    "db_instance_identifier": Setting(
        optional_string,
        None,
        "the RDS DB instance identifier, to read storage encryption from the "
        "AWS API (with the aws section)",
    ),
    "connect_timeout": Setting(at_least(1.0), 5.0, "TCP connect timeout"),
    "read_timeout": Setting(at_least(2.0), 30.0, "timeout of one read"),
    "write_timeout": Setting(at_least(1.0), 30.0, "timeout of one write"),
    "retry_attempts": Setting(integer(1, 100), 3, "connection attempts before down"),
    "retry_delay": Setting(
        duration, 5.0, "wait before the second attempt, doubled for each next one"
    ),
}
SOURCE = Section(SERVER_SETTINGS, "the unencrypted primary")
TARGET = Section(
    {
        **SERVER_SETTINGS,
        "replication_connection": Setting(
            string, "", "multi-source connection name, empty for the default"
        ),
    },
    "the encrypted replica that will take over",
)
STORAGE = Section(
    {
        "path": Setting(string, "/var/lib/encmond/encmond.db", "SQLite database file"),
        "retention": Setting(
            positive_duration, 86400.0, "age after which rows are pruned"
        ),
        "prune_interval": Setting(positive_duration, 300.0, "time between two prunes"),
    }
)
WEB = Section(
    {
        "listen": Setting(
            optional_string, "127.0.0.1:8080", "HOST:PORT, or null for off"
        ),
        "auth_token_file": Setting(
            optional_string, None, "file with the Bearer token the API requires"
        ),
    }
)
PLUGINS = Section(
    {
        "dirs": Setting(
            list_of(string), [DEFAULT_PLUGIN_DIR], "drop-in .py directories"
        ),
    }
)
AWS = Section(
    {
        "region": Setting(
            optional_string, None, "AWS region; null: from the environment or profile"
        ),
        "endpoint_url": Setting(
            optional_http_url, None, "RDS API endpoint; null: the region's own"
        ),
        "profile": Setting(
            optional_string, None, "named profile in the AWS shared credential files"
        ),
        "timeout": Setting(positive_duration, 10.0, "connect and read timeout"),
    },
    "the AWS API, for RDS storage encryption; encmond calls it only when set",
)
ALERTS = Section(
    {
        "renotify": Setting(
            positive_duration, 3600.0, "repeat a firing alert's notification after this"
        ),
    }
)
TOP = Section(
    {
        "source": Setting(anything, None, "the source server"),
        "target": Setting(anything, None, "the target server"),
        "targets": Setting(anything, None, "several targets, by name"),
        "tables": Setting(anything, [], "tables to compare, as schema.table"),
        "checks": Setting(anything, {}, "settings per check, by check name"),
        "storage": Setting(anything, {}, "the SQLite store"),
        "web": Setting(anything, {}, "the dashboard and API"),
        "notifiers": Setting(anything, [{"type": "log"}], "alert receivers"),
        "plugins": Setting(anything, {}, "plugin loading"),
        "alerts": Setting(anything, {}, "alert notification policy"),
        "aws": Setting(anything, None, "the AWS API, for RDS storage encryption"),
    }
)

CHECK_SETTINGS = {
    "enabled": Setting(boolean, True, "run this check"),
    "interval": Setting(at_least(0.1), None, "time between two runs"),
    "timeout": Setting(at_least(0.1), None, "a run past this is UNKNOWN"),
    **ALERT_SETTINGS,
    "tables": Setting(anything, None, "settings for single tables, by schema.table"),
}
NOTIFIER_SETTINGS = {
    "type": Setting(string, help="notifier type, for example log or webhook"),
    "name": Setting(optional_string, None, "name in logs, defaults to the type"),
    "min_severity": Setting(severity, "INFO", "lowest severity sent"),
    "checks": Setting(list_of(string), [], "only alerts of these checks, all if empty"),
    "subjects": Setting(
        list_of(string), [], "only alerts about these subjects, all if empty"
    ),
    "timeout": Setting(positive_duration, 10.0, "network timeout of one delivery"),
    "retry_delay": Setting(
        positive_duration,
        5.0,
        "wait before retrying a failed delivery, doubled for each next attempt",
    ),
    "max_retry_delay": Setting(
        positive_duration, 600.0, "longest wait between two delivery attempts"
    ),
    "give_up_after": Setting(
        positive_duration, 86400.0, "drop a notification not delivered by then"
    ),
}


@dataclass(frozen=True)
class Table:
    """A configured table; ``quoted`` is safe to put into SQL."""

    schema: str
    name: str

    @property
    def quoted(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def __str__(self) -> str:
        # A dot inside a name would make "schema.table" ambiguous, so such names
        # are shown as quoted identifiers.
        if "." in self.schema or "." in self.name:
            return self.quoted
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ServerConfig:
    """Connection settings of one server; ``password`` is a ``Secret``."""

    name: str
    role: str
    host: str
    port: int
    user: str
    password: Secret
    ssl: dict | None
    platform: str
    connect_timeout: float
    read_timeout: float
    write_timeout: float
    retry_attempts: int
    retry_delay: float
    replication_connection: str = ""
    db_instance_identifier: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.user}@{self.host}:{self.port})"


@dataclass(frozen=True)
class WebConfig:
    host: str | None
    port: int | None
    auth_token: Secret | None
    auth_token_file: str | None


@dataclass
class Config:
    """The validated configuration; plugin sections are filled by bind_plugins."""

    path: str
    source: ServerConfig
    targets: dict[str, ServerConfig]
    tables: list[Table]
    storage: dict[str, Any]
    web: WebConfig
    plugin_dirs: list[Path]
    alerts: dict[str, Any]
    raw_checks: dict[str, Any]
    raw_notifiers: list[Any]
    located: Located
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    notifiers: list[dict[str, Any]] = field(default_factory=list)
    # The parsed aws section, None when the file has none.
    aws: dict[str, Any] | None = None

    @property
    def servers(self) -> dict[str, ServerConfig]:
        return {"source": self.source, **self.targets}

    def bind_plugins(self, checks: dict[str, Any], notifiers: dict[str, Any]) -> None:
        """Validate the checks and notifiers sections against the plugins' options.

        ``checks`` maps check names to Check classes and ``notifiers`` maps
        notifier types to Notifier classes; both declare ``options``.
        """
        tables = {str(table) for table in self.tables}
        self.checks = parse_checks(self.raw_checks, checks, self.located, tables)
        self.notifiers = parse_notifiers(self.raw_notifiers, notifiers, self.located)
        for index, settings in enumerate(self.notifiers):
            check_filter(settings["checks"], checks, self.located, index)


def quote_identifier(name: str) -> str:
    """Quote a schema, table or column name for MariaDB, doubling backticks."""
    if "\x00" in name:
        raise ValueError(f"identifier contains a NUL character: {name!r}")
    return "`" + name.replace("`", "``") + "`"


def config_path(option: str | None) -> str:
    """Return the file to read: the -c option, $ENCMOND_CONFIG, else the default."""
    return option or os.environ.get("ENCMOND_CONFIG") or DEFAULT_PATH


def load_config(path: str, environ: dict[str, str] | None = None) -> Config:
    """Read, override from the environment and validate the core sections."""
    environ = os.environ if environ is None else environ
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the configuration file: {exc.strerror}", source=path
        ) from None
    located = Located(path)
    data = parse_yaml(text, located)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise located.error((), f"expected a mapping at the top, got {describe(data)}")
    top = TOP.parse(data, located, ())
    base = Path(path).resolve().parent
    targets_raw = collect_targets(top, located, environ)
    collect_secrets(top, targets_raw, located, environ)
    apply_environment(top, targets_raw, located, environ)
    source = parse_server("source", "source", top["source"], SOURCE, located, base)
    targets = {
        name: parse_server(name, "target", value, TARGET, located, base, path)
        for name, (value, path) in targets_raw.items()
    }
    return Config(
        path=path,
        source=source,
        targets=targets,
        tables=parse_tables(top["tables"], located),
        storage=parse_storage(top["storage"], located, base),
        web=parse_web(top["web"], located, base),
        plugin_dirs=parse_plugin_dirs(data, top["plugins"], located, base),
        alerts=ALERTS.parse(top["alerts"], located, ("alerts",)),
        raw_checks=top["checks"],
        raw_notifiers=top["notifiers"],
        located=located,
        aws=None if top["aws"] is None else AWS.parse(top["aws"], located, ("aws",)),
    )


def parse_yaml(text: str, located: Located) -> Any:
    """Parse YAML into plain values, recording the line of every key in ``located``."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"invalid YAML: {problem}", source=located.source, line=line
        ) from None
    if node is None:
        return None
    return _plain(node, (), located)


def _plain(node: yaml.Node, path: tuple, located: Located) -> Any:
    located.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                raise ConfigError(
                    "a mapping key must be a plain value",
                    source=located.source,
                    line=line,
                )
            key = _scalar(key_node)
            located.lines[path + (key,)] = key_node.start_mark.line + 1
            if key in result:
                raise located.error(path + (key,), f"duplicate key '{key}'")
            result[key] = _plain(value_node, path + (key,), located)
            located.lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _plain(item, path + (index,), located)
            for index, item in enumerate(node.value)
        ]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def collect_targets(top, located, environ) -> dict[str, tuple[Any, tuple]]:
    """Return the target sections by name, from ``target`` or ``targets``."""
    if top["target"] is not None and top["targets"] is not None:
        raise located.error(("targets",), "set either 'target' or 'targets', not both")
    if top["targets"] is None:
        if top["target"] is None and "TARGET_DB_HOST" not in environ:
            raise located.error(("target",), "missing required key 'target'")
        return {"target": (top["target"] or {}, ("target",))}
    if not isinstance(top["targets"], dict) or not top["targets"]:
        raise located.error(
            ("targets",),
            "expected a mapping of target names to "
            f"server settings, got {describe(top['targets'])}",
        )
    for name in top["targets"]:
        if not isinstance(name, str) or not _NAME.match(name) or name == "source":
            raise located.error(
                ("targets", name),
                f"invalid target name "
                f"{describe(name)}: use letters, digits, '_', '.' or "
                "'-', and not 'source'",
            )
    return {name: (value, ("targets", name)) for name, value in top["targets"].items()}


def env_prefix(name: str) -> str:
    """Return the environment prefix of a server: SOURCE_DB_, TARGET_DB_, ..."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_DB_"


def apply_environment(top, targets_raw, located, environ) -> None:
    """Override host, port, user and password from ``<NAME>_DB_*`` variables."""
    sections = {"source": (top["source"], ("source",))} | targets_raw
    for name, (section, path) in sections.items():
        prefix = env_prefix(name)
        found = {
            key: prefix + suffix
            for suffix, key in (
                ("HOST", "host"),
                ("PORT", "port"),
                ("USERNAME", "user"),
                ("PASSWORD", "password"),
            )
            if prefix + suffix in environ
        }
        if not found or (section is not None and not isinstance(section, dict)):
            continue
        section = section or {}
        for key, variable in found.items():
            section[key] = environ[variable]
            located.origins[path + (key,)] = f"environment variable {variable}"
        if "password" in found:
            section.pop("password_file", None)
        if name == "source":
            top["source"] = section
        else:
            targets_raw[name] = (section, path)


def parse_server(name, role, value, section, located, base, path=None) -> ServerConfig:
    path = path or (name,)
    if value is None:
        raise located.error(path, f"missing required section '{path[-1]}'")
    raw_ssl = value.get("ssl") if isinstance(value, dict) else None
    settings = section.parse(value, located, path)
    if settings["password"] is not None and settings["password_file"] is not None:
        raise located.error(
            path + ("password_file",),
            "set either 'password' or 'password_file', not both",
        )
    password = settings["password"] or ""
    if settings["password_file"] is not None:
        password = read_secret_file(
            settings["password_file"], base, located, path + ("password_file",)
        )
    ssl = None
    if raw_ssl is not None:
        ssl = SSL.parse(raw_ssl, located, path + ("ssl",))
        for key in ("ca", "cert", "key"):
            if ssl[key] is not None:
                ssl[key] = str(
                    existing_file(ssl[key], base, located, path + ("ssl", key))
                )
    return ServerConfig(
        name=name,
        role=role,
        host=settings["host"],
        port=settings["port"],
        user=settings["user"],
        password=Secret(password),
        ssl=ssl,
        platform=settings["platform"],
        connect_timeout=settings["connect_timeout"],
        read_timeout=settings["read_timeout"],
        write_timeout=settings["write_timeout"],
        retry_attempts=settings["retry_attempts"],
        retry_delay=settings["retry_delay"],
        replication_connection=settings.get("replication_connection", ""),
        db_instance_identifier=settings["db_instance_identifier"],
    )


def collect_secrets(top, targets_raw, located: Located, environ) -> None:
    """Record every password value, whatever its type, so errors can mask it."""
    sections = [top["source"]] + [value for value, _ in targets_raw.values()]
    for section in sections:
        if isinstance(section, dict) and "password" in section:
            located.secrets.update(scalar_texts(section["password"]))
    for variable, value in environ.items():
        if variable.endswith("_DB_PASSWORD") and value:
            located.secrets.add(value)


def scalar_texts(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {text for item in value.items() for text in scalar_texts(list(item))}
    if isinstance(value, list):
        return {text for item in value for text in scalar_texts(item)}
    return {str(value), repr(value)} if value not in (None, "") else set()


def existing_file(value: str, base: Path, located: Located, path: tuple) -> Path:
    file = (base / value) if not Path(value).is_absolute() else Path(value)
    if file.is_dir():
        raise located.error(path, f"expected a file, {file} is a directory")
    if not file.is_file():
        raise located.error(path, f"file not found: {file}")
    return file


def read_secret_file(value: str, base: Path, located: Located, path: tuple) -> str:
    """Return the first line of a secret file, without its line ending."""
    file = existing_file(value, base, located, path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise located.error(path, f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise located.error(path, f"{file} is not valid UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise located.error(
            path,
            f"{file} is empty: write the secret on its first line "
            "(an account without a password takes password: '' instead)",
        )
    return lines[0]


def parse_table(value: Any) -> Table:
    if isinstance(value, dict):
        if set(value) != {"schema", "table"}:
            raise ValueError(
                "expected 'schema.table' or {schema: ..., table: ...}, "
                f"got {describe(value)}"
            )
        schema, name = string(value["schema"]), string(value["table"])
    else:
        text = string(value)
        schema, dot, name = text.partition(".")
        if not dot:
            raise ValueError(f"expected 'schema.table', got {describe(value)}")
    if not schema or not name:
        raise ValueError(
            f"expected a non-empty schema and table, got {describe(value)}"
        )
    if any(ord(char) < 32 for char in schema + name):
        raise ValueError(f"a table name contains a control character: {value!r}")
    return Table(schema, name)


def parse_tables(value: Any, located: Located) -> list[Table]:
    if not isinstance(value, list):
        raise located.error(
            ("tables",), f"expected a list of schema.table names, got {describe(value)}"
        )
    tables = []
    for index, item in enumerate(value):
        try:
            table = parse_table(item)
        except ValueError as exc:
            raise located.error(("tables", index), str(exc)) from None
        if table in tables:
            raise located.error(("tables", index), f"table {table} is listed twice")
        tables.append(table)
    return tables


def parse_storage(value: Any, located: Located, base: Path) -> dict[str, Any]:
    storage = STORAGE.parse(value, located, ("storage",))
    storage["path"] = str(base / storage["path"])
    return storage


def parse_listen(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:8080, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_web(value: Any, located: Located, base: Path) -> WebConfig:
    web = WEB.parse(value, located, ("web",))
    host = port = None
    if web["listen"] is not None:
        try:
            host, port = parse_listen(web["listen"])
        except ValueError as exc:
            raise located.error(("web", "listen"), str(exc)) from None
    token = None
    if web["auth_token_file"] is not None:
        token = Secret(
            read_secret_file(
                web["auth_token_file"], base, located, ("web", "auth_token_file")
            ).strip()
        )
        if not token:
            raise located.error(("web", "auth_token_file"), "the token file is empty")
    return WebConfig(host, port, token, web["auth_token_file"])


def parse_plugin_dirs(data, value, located, base) -> list[Path]:
    plugins = PLUGINS.parse(value, located, ("plugins",))
    explicit = isinstance(data.get("plugins"), dict) and "dirs" in data["plugins"]
    dirs = []
    for index, entry in enumerate(plugins["dirs"]):
        directory = base / entry
        if not directory.is_dir():
            if explicit:
                raise located.error(
                    ("plugins", "dirs", index),
                    f"plugin directory not found: {directory}",
                )
            continue
        dirs.append(directory)
    return dirs


def parse_checks(
    raw: Any, known: dict[str, Any], located: Located, tables: set[str]
) -> dict:
    """Validate ``checks`` against each check's declared options."""
    if not isinstance(raw, dict):
        raise located.error(
            ("checks",),
            f"expected a mapping of check names to settings, got {describe(raw)}",
        )
    lookup = Section({name: Setting(anything, None) for name in known})
    unknown = [name for name in raw if name not in known]
    if unknown:
        raise located.error(
            ("checks", unknown[0]),
            lookup.unknown_key(unknown[0]).replace("key", "check", 1),
        )
    parsed = {}
    for name, check in known.items():
        section = Section({**CHECK_SETTINGS, **check.options})
        settings = section.parse(raw.get(name), located, ("checks", name))
        settings["interval"] = settings["interval"] or float(check.interval)
        settings["timeout"] = settings["timeout"] or check.default_timeout(
            settings["interval"]
        )
        settings["tables"] = parse_table_overrides(
            settings["tables"], section, tables, located, ("checks", name, "tables")
        )
        try:
            check.check_settings(settings)
        except ValueError as exc:
            raise located.error(("checks", name), str(exc)) from None
        parsed[name] = settings
    return parsed


def check_filter(names: list[str], known: dict[str, Any], located, index) -> None:
    """Reject a notifier's ``checks`` filter that names a check that does not exist."""
    lookup = Section({name: Setting(anything, None) for name in known})
    for position, name in enumerate(names):
        if name not in known:
            message = lookup.unknown_key(name).replace("key", "check", 1)
            raise located.error(("notifiers", index, "checks", position), message)


def parse_notifiers(raw: Any, known: dict[str, Any], located: Located) -> list[dict]:
    """Validate each ``notifiers`` entry against its type's declared options."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise located.error(
            ("notifiers",), f"expected a list of notifiers, got {describe(raw)}"
        )
    types = Section({name: Setting(anything, None) for name in known})
    parsed, names = [], set()
    for index, entry in enumerate(raw):
        path = ("notifiers", index)
        if not isinstance(entry, dict) or "type" not in entry:
            raise located.error(
                path, f"expected a mapping with a 'type' key, got {describe(entry)}"
            )
        kind = entry["type"]
        if kind not in known:
            message = types.unknown_key(kind).replace("key", "notifier type", 1)
            raise located.error(path + ("type",), message)
        section = Section({**NOTIFIER_SETTINGS, **known[kind].options})
        settings = section.parse(entry, located, path)
        try:
            known[kind].check_settings(settings)
        except ValueError as exc:
            raise located.error(path, str(exc)) from None
        settings["name"] = settings["name"] or (
            kind if kind not in names else f"{kind}-{index}"
        )
        if settings["name"] in names:
            raise located.error(
                path + ("name",), f"notifier name '{settings['name']}' is used twice"
            )
        names.add(settings["name"])
        parsed.append(settings)
    return parsed
