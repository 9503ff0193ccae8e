"""Typed settings: parsers for configuration values and mappings of them.

A ``Setting`` describes one key: how to parse its value, its default and one
help sentence. A ``Section`` is a mapping of settings; it rejects unknown keys
with the nearest known one. Parsers raise ``ValueError`` with what is allowed,
and ``Section.parse`` turns that into a ``ConfigError`` naming file, line and key.
"""

from __future__ import annotations

import difflib
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from encmond.errors import ConfigError

Parser = Callable[[Any], Any]

REQUIRED = object()
_ASCII_INTEGER = re.compile(r"^\s*-?[0-9]+\s*$")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
SEVERITIES = ("INFO", "WARNING", "CRITICAL")


class Secret:
    """A password or token that prints as ``***`` in logs, reprs and JSON."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def describe(value: Any) -> str:
    """Return a short, quoted rendering of a configuration value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def duration(value: Any) -> float:
    """Parse ``500ms``, ``30s``, ``5m``, ``24h``, ``2d`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(
            f"expected a duration such as 30s or 5m, got {describe(value)}"
        )
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"expected a duration such as 500ms, 30s, 5m, 24h or a number of "
                f"seconds, got {describe(value)}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {describe(value)}")
    if seconds < 0:
        raise ValueError(f"expected a duration of 0 or more, got {describe(value)}")
    return seconds


def at_least(minimum: float) -> Parser:
    """Return a duration parser that rejects values below ``minimum`` seconds."""

    def parse(value: Any) -> float:
        seconds = duration(value)
        if seconds < minimum:
            raise ValueError(f"expected {minimum:g} s or more, got {describe(value)}")
        return seconds

    return parse


def positive_duration(value: Any) -> float:
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration greater than 0, got {describe(value)}")
    return seconds


def anything(value: Any) -> Any:
    """Accept any value; a later step validates it."""
    return value


def password_text(value: Any) -> str | None:
    """Accept a password only as YAML read it from a string, never its value."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(
            "expected a string; put the password in quotes so that YAML keeps it "
            "as written (unquoted, YAML reads some passwords as numbers or dates)"
        )
    return value


def plain_name(value: Any) -> str:
    """Parse a host or user name: not empty, without spaces or control characters."""
    text = string(value)
    if not text or any(char.isspace() or ord(char) < 32 for char in text):
        raise ValueError(
            f"expected a non-empty name without spaces or control characters, "
            f"got {describe(value)}"
        )
    return text


def string(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        raise ValueError(f"expected a string, got {describe(value)}")
    return str(value)


def optional_string(value: Any) -> str | None:
    return None if value is None else string(value)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {describe(value)}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(value: Any) -> int:
        if isinstance(value, str) and _ASCII_INTEGER.match(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {describe(value)}")
        if minimum is not None and value < minimum:
            raise ValueError(f"expected {minimum} or more, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"expected {maximum} or less, got {value}")
        return value

    return parse


def choice(*allowed: str, upper: bool = False) -> Parser:
    def parse(value: Any) -> str:
        text = string(value)
        text = text.upper() if upper else text
        if text not in allowed:
            raise ValueError(
                f"expected one of {', '.join(allowed)}, got {describe(value)}"
            )
        return text

    return parse


def list_of(item: Parser) -> Parser:
    def parse(value: Any) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {describe(value)}")
        return [item(element) for element in value]

    return parse


def severity(value: Any) -> str:
    return choice(*SEVERITIES, upper=True)(value)


def http_url(value: Any) -> str:
    """Parse an http:// or https:// URL with a host."""
    text = string(value)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "expected an http:// or https:// URL with a host, got "
            f"{describe(redact_url(text))}"
        )
    if "@" in parts.netloc:
        # urllib sends no Authorization header for user:password@ and looks
        # the whole "user:password@host" up as a host name, in DNS.
        raise ValueError(
            "credentials in the URL (user:password@host) are not supported, "
            "because they would never be sent as HTTP authentication: remove "
            "them, and give the webhook notifier an Authorization header in "
            f"'headers' instead; got {describe(redact_url(text))}"
        )
    return text


def optional_http_url(value: Any) -> str | None:
    return None if value is None else http_url(value)


def secret_url(value: Any) -> Secret:
    """Parse a URL that may carry a token or password, as a Secret."""
    return Secret(http_url(value))


def secret(value: Any) -> Secret:
    return Secret(string(value))


def optional_secret(value: Any) -> Secret | None:
    return None if value is None else secret(value)


def secret_file(value: Any) -> Secret | None:
    """Read the first line of the named file (an absolute path) as a Secret."""
    if value is None:
        return None
    path = Path(string(value))
    if not path.is_absolute():
        raise ValueError(f"expected an absolute path, got {describe(value)}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return Secret(lines[0] if lines else "")


def secret_mapping(value: Any) -> dict[str, Secret]:
    """Parse a mapping of names to secret strings (HTTP headers, say)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {describe(value)}")
    return {string(key): secret(item) for key, item in value.items()}


def redact_url(text: str) -> str:
    """Return a URL with only its scheme, host and port, for messages."""
    parts = urllib.parse.urlsplit(text)
    if not parts.hostname:
        return "***"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}/***"


@dataclass(frozen=True)
class Setting:
    """One configuration key: its parser, default and a help sentence."""

    parse: Parser
    default: Any = REQUIRED
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass
class Located:
    """Line numbers of a parsed YAML document, keyed by the path of each value."""

    source: str
    lines: dict[tuple, int] = field(default_factory=dict)
    origins: dict[tuple, str] = field(default_factory=dict)
    # Password values seen in the file or environment, masked in every message,
    # because a YAML anchor can reuse a password under any key.
    secrets: set[str] = field(default_factory=set)

    def mask(self, message: str) -> str:
        """Replace each whole occurrence of a password in ``message`` with ***.

        An occurrence inside a longer word stays, because masking
        the "y" of "key" would garble the message and show where the
        password's letters are.
        """
        for secret in sorted(self.secrets, key=len, reverse=True):
            alone = rf"(?<!\w){re.escape(secret)}(?!\w)"
            message = re.sub(alone, "***", message)
        return message

    def error(self, path: tuple, message: str) -> ConfigError:
        """Build a ConfigError for the value at ``path`` (or its nearest parent)."""
        message = self.mask(message)
        key = ".".join(str(part) for part in path)
        origin = self.origins.get(path)
        if origin:
            return ConfigError(message, source=origin, key=key)
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        return ConfigError(
            message, source=self.source, line=self.lines.get(probe), key=key
        )


class Section:
    """A mapping with known keys; ``parse`` validates it and fills in defaults."""

    def __init__(self, settings: Mapping[str, Setting], help: str = "") -> None:
        self.settings = dict(settings)
        self.help = help

    def parse(self, value: Any, located: Located, path: tuple) -> dict[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise located.error(path, f"expected a mapping, got {describe(value)}")
        unknown = [key for key in value if key not in self.settings]
        if unknown:
            raise located.error(path + (unknown[0],), self.unknown_key(unknown[0]))
        parsed = {}
        for key, setting in self.settings.items():
            parsed[key] = self.parse_key(key, setting, value, located, path)
        return parsed

    def parse_key(self, key, setting, value, located, path):
        if key not in value:
            if setting.required:
                raise located.error(path + (key,), f"missing required key '{key}'")
            return setting.default
        try:
            return setting.parse(value[key])
        except ValueError as exc:
            raise located.error(path + (key,), str(exc)) from None

    def unknown_key(self, key: Any) -> str:
        message = f"unknown key '{key}'"
        nearest = difflib.get_close_matches(str(key), self.settings, n=1, cutoff=0.6)
        if nearest:
            return f"{message}; did you mean '{nearest[0]}'?"
        return f"{message}; known keys: {', '.join(sorted(self.settings))}"
