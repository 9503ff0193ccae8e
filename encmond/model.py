"""The types that checks, notifiers and the core exchange."""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from encmond.runner import CheckContext
    from encmond.settings import Setting


class Status(enum.Enum):
    """Outcome of a check for one subject."""

    OK = "OK"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """Order for "worst of": OK < UNKNOWN < WARNING < CRITICAL."""
        return _STATUS_RANK[self]

    @property
    def exit_code(self) -> int:
        """Exit status of ``encmond check``: 0 OK, 1 WARNING or UNKNOWN, 2 CRITICAL."""
        return {Status.OK: 0, Status.CRITICAL: 2}.get(self, 1)

    @classmethod
    def worst(cls, statuses: Iterable[Status]) -> Status:
        return max(statuses, key=lambda status: status.rank, default=cls.OK)


_STATUS_RANK = {Status.OK: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.CRITICAL: 3}


class Severity(enum.Enum):
    """Severity of an alert."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass
class Result:
    """What a check found about one subject: a table, a server, a channel.

    ``metrics`` maps names to numbers; ``None`` means "not known" and is never
    stored as 0. ``details`` holds JSON-serialisable evidence. The runner sets
    ``check``, ``time``, ``duration`` and, when the check left it empty,
    ``server``.
    """

    subject: str
    status: Status
    message: str = ""
    metrics: dict[str, float | None] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    server: str = ""
    check: str = ""
    time: float = 0.0
    duration: float | None = None

    def __post_init__(self) -> None:
        for name, value in self.metrics.items():
            if value is not None and not math.isfinite(float(value)):
                raise ValueError(f"metric {name} of {self.subject} is {value}")

    def __str__(self) -> str:
        return f"{self.check}/{self.server}/{self.subject} {self.status.value}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        return cls(**{**data, "status": Status(data["status"])})


class Check:
    """Base class of a check; plugins subclass it and register the class.

    ``scope`` is ``pair`` for a check that runs once per target with
    ``ctx.source`` and ``ctx.target``, or ``server`` for one that runs once per
    server with ``ctx.server``. ``options`` declares extra configuration keys
    under ``checks.<name>``; ``self.settings`` holds their parsed values next to
    ``interval``, ``timeout`` and ``enabled``. ``depends_on`` names the checks
    whose latest results this one reads through ``ctx.state``; one-shot
    commands run those first.
    """

    name: ClassVar[str] = ""
    scope: ClassVar[str] = "pair"
    interval: ClassVar[float] = 60.0
    timeout: ClassVar[float | None] = None
    options: ClassVar[dict[str, Setting]] = {}
    depends_on: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @classmethod
    def default_timeout(cls, interval: float) -> float:
        """Return the timeout used when the configuration sets none, in seconds."""
        return float(cls.timeout) if cls.timeout else max(interval, 60.0)

    def run(self, ctx: CheckContext) -> Iterable[Result]:
        """Run once and return (or yield) one Result per subject."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name


@dataclass
class Alert:
    """A condition keyed by (check, server, subject), firing or resolved."""

    check: str
    server: str
    subject: str
    severity: Severity
    message: str
    state: str = "firing"
    id: int | None = None
    started_at: float = 0.0
    updated_at: float = 0.0
    resolved_at: float | None = None
    notified_at: float | None = None
    notified_severity: Severity | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.check, self.server, self.subject)

    @property
    def fingerprint(self) -> str:
        """A stable id of the key, the same across restarts and severities."""
        text = "\x1f".join(self.key)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return f"{self.severity.value} {self.check}/{self.server}/{self.subject}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["notified_severity"] = (
            self.notified_severity.value if self.notified_severity else None
        )
        data["fingerprint"] = self.fingerprint
        return data


@dataclass
class Notification:
    """One alert event for a notifier to deliver."""

    event: str
    alert: Alert
    time: float

    def __str__(self) -> str:
        return f"{self.event} {self.alert}"

    def summary(self) -> str:
        """Return one readable line: event, severity, key and message."""
        alert = self.alert
        state = "RESOLVED" if self.event == "resolved" else alert.severity.value
        return (
            f"[{state}] {alert.check} on {alert.server}: {alert.subject}: "
            f"{alert.message}"
        )


class Notifier:
    """Base class of a notifier; plugins subclass it and register the class.

    ``type`` selects it in the configuration; ``options`` declares its keys.
    ``send`` delivers one notification or raises to have it retried later.
    """

    type: ClassVar[str] = ""
    options: ClassVar[dict[str, Setting]] = {}

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.name: str = settings.get("name") or self.type

    def send(self, notification: Notification) -> None:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name
