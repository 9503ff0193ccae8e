"""The plugin hooks: every hook a plugin may implement is declared here.

Hooks named ``register_*`` return things for encmond to register. Hooks named
``on_*`` observe an event and return nothing. A plugin implements a hook by
defining a function of the same name marked with ``encmond.hookimpl``; it may
accept any subset of the declared arguments. Hooks only grow by new arguments.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from encmond.model import Alert, Check, Notifier, Result

PROJECT = "encmond"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_checks() -> list[type[Check]]:
    """Return the check classes this plugin provides.

    Called once at start and again on reload. Each class subclasses
    ``encmond.Check`` and has a unique ``name``, which is also its key under
    ``checks:`` in the configuration. Returns a list of classes (not instances).
    """


@hookspec
def register_notifiers() -> list[type[Notifier]]:
    """Return the notifier classes this plugin provides.

    Called once at start and again on reload. Each class subclasses
    ``encmond.Notifier`` and has a unique ``type``, which configuration entries
    under ``notifiers:`` select with ``type:``. Returns a list of classes.
    """


@hookspec
def on_results(results: list[Result]) -> None:
    """Observe the results of one check run, after they are stored.

    ``results`` are the ``encmond.Result`` objects of one run of one check
    against one server or pair, with ``check``, ``server`` and ``time`` set.
    Called in the daemon's event loop, so an implementation must return quickly.
    Returns nothing.
    """


@hookspec
def on_alert(alert: Alert, event: str) -> None:
    """Observe an alert's state change, after it is stored.

    ``alert`` is the ``encmond.Alert`` as stored. ``event`` is ``pending``
    for a new alert still within its ``for``, ``firing``, ``changed`` for a
    higher severity, ``renotify`` for a repeat of a still firing alert,
    ``resolved``, ``dropped`` for a pending alert whose condition cleared,
    ``inhibited``/``uninhibited``, ``silenced``/``unsilenced``,
    ``acknowledged``/``unacknowledged``, or "" for an update with no event of
    its own. Called once per change, before notifiers run. Returns nothing.
    """
