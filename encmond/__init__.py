"""encmond watches a MariaDB source replicating into an encrypted target.

Plugins import what they need from here: ``hookimpl`` marks hook
implementations, and ``Check``, ``Notifier``, ``Result`` and ``Status`` are
the types the hooks exchange.
"""

from encmond.hookspecs import hookimpl
from encmond.model import Alert, Check, Notification, Notifier, Result, Severity, Status

__version__ = "0.1.0"

__all__ = [
    "Alert",
    "Check",
    "Notification",
    "Notifier",
    "Result",
    "Severity",
    "Status",
    "__version__",
    "hookimpl",
]
