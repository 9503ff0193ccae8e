"""Exceptions that encmond raises on purpose, each with its message built here."""

from __future__ import annotations

EX_CONFIG = 78  # sysexits.h: configuration error; systemd does not restart on it


class EncmondError(Exception):
    """Base class of every error encmond raises on purpose.

    ``exit_code`` is the command's exit status when the error ends it.
    """

    exit_code = EX_CONFIG


class StartupError(EncmondError):
    """The daemon cannot start for a reason outside the configuration's syntax.

    It exits with status 1, so systemd's Restart=on-failure tries again: a
    port still held by a stopping process or a full disk can clear.
    """

    exit_code = 1


class ConfigError(EncmondError):
    """Invalid configuration: names the file, the line, the key and the fix."""

    def __init__(
        self, message: str, *, source: str = "", line: int | None = None, key: str = ""
    ) -> None:
        self.source = source
        self.line = line
        self.key = key
        self.reason = message
        where = source
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        prefix = f"{where}: " if where else ""
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


class PluginError(EncmondError):
    """A plugin failed to load or declares something encmond cannot use."""


class DatabaseError(EncmondError):
    """A query or connection failed; ``server`` names the configured server."""

    def __init__(self, server: str, message: str, errno: int | None = None) -> None:
        self.server = server
        self.errno = errno
        self.reason = message
        code = f" (error {errno})" if errno else ""
        super().__init__(f"{server}: {message}{code}")


class ServerUnavailable(DatabaseError):
    """The server cannot be reached after the configured connection attempts."""


class PrivilegeError(DatabaseError):
    """The monitoring user lacks a privilege; ``grant`` is the statement to run."""

    def __init__(self, server: str, message: str, errno: int, grant: str) -> None:
        self.grant = grant
        super().__init__(server, f"{message}; fix with: {grant}", errno)


class CheckTimeout(EncmondError):
    """A check ran past its configured timeout."""

    def __init__(self, check: str, timeout: float) -> None:
        self.check = check
        self.timeout = timeout
        super().__init__(f"{check} timed out after {timeout:g} s")
