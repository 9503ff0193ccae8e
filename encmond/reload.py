"""Reloading the configuration on SIGHUP, without a restart.

A reload re-reads the configuration file and the plugins. Everything is built
before anything is replaced, so an invalid file or a failing plugin leaves the
running configuration in force. The store, the event hub (and with it every
WebSocket client) and the web server stay. ``storage.path`` and ``web.listen``
apply only at the next restart.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from encmond.config import Config
from encmond.errors import EncmondError
from encmond.monitor import Monitor
from encmond.plugins_loader import Plugins
from encmond.scheduler import CheckScheduler
from encmond.status import StatusLine

log = logging.getLogger(__name__)

RELOAD_GRACE = 10.0  # seconds running checks get to finish before a reload kills them

# Section names for the reload log line, by Config attribute.
SECTIONS = {
    "source": "source",
    "targets": "targets",
    "tables": "tables",
    "checks": "checks",
    "notifiers": "notifiers",
    "alerts": "alerts",
    "storage": "storage",
    "web": "web",
    "plugin_dirs": "plugins.dirs",
}


def keep_restart_settings(running: Config, loaded: Config) -> list[str]:
    """Put the running ``storage.path`` and ``web.listen`` back into ``loaded``.

    Returns the keys that differed; each needs a restart to apply.
    """
    pinned = []
    old_path, new_path = running.storage["path"], loaded.storage["path"]
    if new_path != old_path:
        log.warning(
            "storage.path changed from %s to %s; encmond keeps writing %s until "
            "it is restarted",
            old_path,
            new_path,
            old_path,
        )
        loaded.storage["path"] = old_path
        pinned.append("storage.path")
    old_web, new_web = running.web, loaded.web
    if (new_web.host, new_web.port) != (old_web.host, old_web.port):
        log.warning(
            "web.listen changed from %s to %s; encmond keeps listening on %s until "
            "it is restarted",
            listen_text(old_web),
            listen_text(new_web),
            listen_text(old_web),
        )
        loaded.web = dataclasses.replace(new_web, host=old_web.host, port=old_web.port)
        pinned.append("web.listen")
    return pinned


def listen_text(web) -> str:
    return "off" if web.host is None else f"{web.host}:{web.port}"


def changed_sections(running: Config, loaded: Config) -> list[str]:
    """Name the configuration sections whose values differ."""
    return [
        name
        for attribute, name in SECTIONS.items()
        if getattr(running, attribute) != getattr(loaded, attribute)
    ]


class Reloader:
    """Swaps a re-read configuration into the running monitor and scheduler.

    ``load`` reads a configuration file and its plugins, as at start.
    """

    def __init__(
        self,
        monitor: Monitor,
        scheduler: CheckScheduler,
        status: StatusLine,
        load: Callable[[str], tuple[Config, Plugins]],
    ) -> None:
        self.monitor = monitor
        self.scheduler = scheduler
        self.status = status
        self.load = load

    def reload(self) -> bool:
        """Reload from the running configuration's file; returns whether it applied.

        systemd shows the unit as reloading until the reload has applied or failed.
        """
        path = self.monitor.config.path
        self.status.notifier.reloading(f"reloading {path}")
        try:
            applied = self.reload_from(path)
        except Exception:
            self.status.ready()
            raise
        # Not in a finally: a stop that kills the reload must not send READY=1.
        self.status.ready()
        return applied

    def reload_from(self, path: str) -> bool:
        running = self.monitor.config
        try:
            config, plugins = self.load(path)
            pinned = keep_restart_settings(running, config)
            setup = self.monitor.prepare(config, plugins)
        except EncmondError as exc:
            return self.failed(str(exc))
        except Exception as exc:
            log.exception("building the reloaded configuration failed")
            return self.failed(f"{type(exc).__name__}: {exc}")
        keep = self.scheduler.pause(RELOAD_GRACE)
        dispatcher = self.monitor.dispatcher
        retired = self.monitor.apply(setup)
        dispatcher.stop()
        self.monitor.dispatcher.start()
        for database in retired:
            database.close()
        self.scheduler.resume(keep)
        self.status.note = f"restart to apply {', '.join(pinned)}" if pinned else ""
        changed = changed_sections(running, config)
        log.info(
            "configuration reloaded from %s: %s; %d check jobs",
            path,
            f"changed {', '.join(changed)}" if changed else "no changes",
            len(self.monitor.jobs),
        )
        return True

    def failed(self, reason: str) -> bool:
        log.error("reload failed, the running configuration stays in force: %s", reason)
        self.status.note = f"reload failed: {reason}"
        return False
