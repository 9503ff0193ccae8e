"""Plugin loading: entry points, drop-in files, then the bundled plugins.

All three register with the same pluggy manager and the same hooks. After
loading, ``check_pending`` rejects an implementation of a hook that does not
exist, naming the plugin, so a misspelt hook fails at start.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pluggy

from encmond import hookspecs
from encmond.errors import PluginError
from encmond.model import Check, Notifier

log = logging.getLogger(__name__)
trace = logging.getLogger("encmond.hooks")

ENTRY_POINT_GROUP = "encmond"
TRACE_VARIABLE = "ENCMOND_TRACE_HOOKS"
BUNDLED = (
    "encmond.plugins.checks.connection",
    "encmond.plugins.checks.replica_lag",
    "encmond.plugins.checks.checksum",
    "encmond.plugins.checks.row_count",
    "encmond.plugins.checks.heartbeat",
    "encmond.plugins.checks.encryption",
    "encmond.plugins.checks.errant_writes",
    "encmond.plugins.checks.schema",
    "encmond.plugins.checks.replication_filters",
    "encmond.plugins.checks.cutover",
    "encmond.plugins.notifiers.log",
    "encmond.plugins.notifiers.webhook",
    "encmond.plugins.notifiers.slack",
    "encmond.plugins.notifiers.mail",
    "encmond.plugins.notifiers.alertmanager",
)


@dataclass
class PluginInfo:
    """A loaded plugin: its name, where it came from and what it registered."""

    name: str
    origin: str
    checks: list[str] = field(default_factory=list)
    notifiers: list[str] = field(default_factory=list)


@dataclass
class Plugins:
    """The plugin manager with the checks and notifiers its plugins registered."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    checks: dict[str, type[Check]]
    notifiers: dict[str, type[Notifier]]

    @property
    def hook(self) -> pluggy.HookRelay:
        return self.manager.hook


def load_plugins(plugin_dirs: list[Path]) -> Plugins:
    """Load every plugin and collect its checks and notifiers."""
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_VARIABLE):
        manager.trace.root.setwriter(lambda text: trace.info("%s", text.rstrip()))
        manager.enable_tracing()
    infos: dict[str, PluginInfo] = {}
    load_entry_points(manager, infos)
    for directory in plugin_dirs:
        load_directory(manager, infos, directory)
    for module_name in BUNDLED:
        register(
            manager, infos, importlib.import_module(module_name), module_name, "bundled"
        )
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or repr(exc.plugin)
        raise PluginError(f"plugin {name} implements an unknown hook: {exc}") from None
    checks = collect(manager, infos, "register_checks", Check, "name")
    notifiers = collect(manager, infos, "register_notifiers", Notifier, "type")
    return Plugins(manager, infos, checks, notifiers)


def register(manager, infos, module: ModuleType, name: str, origin: str) -> None:
    try:
        manager.register(module, name=name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise PluginError(
            f"plugin {name} ({origin}) cannot be registered: {exc}"
        ) from None
    infos[name] = PluginInfo(name, origin)


def load_entry_points(manager, infos) -> None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        origin = "entry point"
        if dist is not None:
            origin = f"entry point of {dist.metadata['Name']} {dist.version}"
        try:
            module = entry_point.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {entry_point.name} ({origin}) failed to "
                f"import: {type(exc).__name__}: {exc}"
            ) from exc
        register(manager, infos, module, entry_point.name, origin)


def load_directory(manager, infos, directory: Path) -> None:
    for path in sorted(directory.glob("*.py")):
        module_name = "encmond_dropin_" + re.sub(r"\W", "_", path.stem)
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"plugin file {path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise PluginError(
                f"plugin file {path} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        register(manager, infos, module, str(path), f"file {path}")
        log.debug("loaded plugin file %s", path)


def collect(manager, infos, hook_name: str, base: type, key: str) -> dict:
    """Call one register_* hook per plugin and index the classes by ``key``."""
    found: dict[str, type] = {}
    owners: dict[str, str] = {}
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        try:
            classes = impl.function() or []
        except Exception as exc:
            raise PluginError(
                f"plugin {impl.plugin_name}: {hook_name} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if os.environ.get(TRACE_VARIABLE):
            # Called one implementation at a time, so pluggy's tracing sees none.
            trace.info("%s of %s returned %r", hook_name, impl.plugin_name, classes)
        for cls in classes:
            name = getattr(cls, key, "")
            if not (isinstance(cls, type) and issubclass(cls, base) and name):
                raise PluginError(
                    f"plugin {impl.plugin_name}: {hook_name} returned "
                    f"{cls!r}, expected a subclass of "
                    f"encmond.{base.__name__} with a {key}"
                )
            if name in found:
                raise PluginError(
                    f"plugins {owners[name]} and {impl.plugin_name} "
                    f"both register {key} '{name}'"
                )
            found[name] = cls
            owners[name] = impl.plugin_name
            info = infos[impl.plugin_name]
            (info.checks if base is Check else info.notifiers).append(name)
    return found
