"""The types that checks, notifiers and the core exchange."""

from __future__ import annotations

import enum
import hashlib
import math
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from encmond.settings import Secret

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

    ``conditions`` names the separate alerts of one subject and their status,
    for a subject whose problems alert apart (``replica_lag``: ``lag``,
    ``lag_unknown``, ``stopped``). Empty means one alert with ``status``. A
    condition left out keeps its alert as it is, like an UNKNOWN status.
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
    conditions: dict[str, Status] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.metrics.items():
            if value is not None and not math.isfinite(float(value)):
                raise ValueError(f"metric {name} of {self.subject} is {value}")

    def __str__(self) -> str:
        return f"{self.check}/{self.server}/{self.subject} {self.status.value}"

    def condition_statuses(self) -> dict[str, Status]:
        """Return the status of each alert condition; "" is the subject's own."""
        return self.conditions or {"": self.status}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        data["conditions"] = {
            name: status.value for name, status in self.conditions.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        conditions = {
            name: Status(value) for name, value in data.get("conditions", {}).items()
        }
        return cls(
            **{**data, "status": Status(data["status"]), "conditions": conditions}
        )


class Check:
    """Base class of a check; plugins subclass it and register the class.

    ``scope`` is ``pair`` for a check that runs once per target with
    ``ctx.source`` and ``ctx.target``, or ``server`` for one that runs once per
    server with ``ctx.server``. ``options`` declares extra configuration keys
    under ``checks.<name>``; ``self.settings`` holds their parsed values next to
    ``interval``, ``timeout`` and ``enabled``. Declaring ``for`` or
    ``keep_firing_for`` there changes the check's default alert timing.

    ``replication_dependent`` is true for a check whose findings on a target
    mean nothing while replication into it is stopped or a server is down
    (lag, data comparisons): its alerts on that target are inhibited then.
    ``depends_on`` names the checks whose latest results this one reads
    through ``ctx.state``; one-shot commands run those first.
    """

    name: ClassVar[str] = ""
    scope: ClassVar[str] = "pair"
    interval: ClassVar[float] = 60.0
    timeout: ClassVar[float | None] = None
    options: ClassVar[dict[str, Setting]] = {}
    replication_dependent: ClassVar[bool] = False
    depends_on: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @classmethod
    def default_timeout(cls, interval: float) -> float:
        """Return the timeout used when the configuration sets none, in seconds."""
        return float(cls.timeout) if cls.timeout else max(interval, 60.0)

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Validate settings that depend on each other; raise ValueError if not.

        Called while the configuration is validated, with every key parsed.
        """

    def run(self, ctx: CheckContext) -> Iterable[Result]:
        """Run once and return (or yield) one Result per subject."""
        raise NotImplementedError

    def settings_for(self, subject: object) -> dict[str, Any]:
        """Return the settings with the overrides for one table applied."""
        overrides = (self.settings.get("tables") or {}).get(str(subject), {})
        return {**self.settings, **overrides}

    def __str__(self) -> str:
        return self.name


@dataclass
class Alert:
    """A condition keyed by (check, server, subject, condition).

    ``state`` is ``pending`` until the condition has held for the check's
    ``for``, then ``firing``, then ``resolved`` once it has been clear for
    ``keep_firing_for``. ``inhibited_by`` names the alert that suppresses its
    notifications (a stopped replication, a server down), ``silence_id``
    the silence that mutes it, and ``acked_by`` who acknowledged it.
    """

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
    condition: str = ""
    pending_since: float | None = None
    fired_at: float | None = None
    clear_since: float | None = None
    inhibited_by: str | None = None
    silence_id: int | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    ack_comment: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.check, self.server, self.subject, self.condition)

    @property
    def name(self) -> str:
        """The key as one readable string: check/server/subject[/condition]."""
        return "/".join(part for part in self.key if part)

    @property
    def fingerprint(self) -> str:
        """A stable id of the key, the same across restarts and severities."""
        parts = self.key if self.condition else self.key[:3]
        text = "\x1f".join(parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return f"{self.severity.value} {self.name}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["notified_severity"] = (
            self.notified_severity.value if self.notified_severity else None
        )
        data["fingerprint"] = self.fingerprint
        data["inhibited"] = self.inhibited_by is not None
        data["silenced"] = self.silence_id is not None
        data["acknowledged"] = self.acked_at is not None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild an alert from ``to_dict`` output; derived keys are ignored."""
        known = {name for name in cls.__dataclass_fields__}
        values = {key: value for key, value in data.items() if key in known}
        values["severity"] = Severity(values["severity"])
        if values.get("notified_severity"):
            values["notified_severity"] = Severity(values["notified_severity"])
        return cls(**values)


@dataclass
class Notification:
    """One alert event for a notifier to deliver.

    ``event`` is ``firing``, ``changed`` (a higher severity), ``renotify`` or
    ``resolved``; ``previous_severity`` is the severity notified before a
    ``changed`` event.
    """

    event: str
    alert: Alert
    time: float
    previous_severity: Severity | None = None

    def __str__(self) -> str:
        return f"{self.event} {self.alert}"

    def summary(self) -> str:
        """Return one readable line: event, severity, key and message."""
        alert = self.alert
        state = "RESOLVED" if self.event == "resolved" else alert.severity.value
        subject = alert.subject
        if alert.condition:
            subject += f" ({alert.condition})"
        return f"[{state}] {alert.check} on {alert.server}: {subject}: {alert.message}"


class Notifier:
    """Base class of a notifier; plugins subclass it and register the class.

    ``type`` selects it in the configuration; ``options`` declares its keys.
    ``send`` delivers one notification or raises to have it retried later.
    Settings parsed as ``encmond.settings.Secret`` (URLs with tokens,
    passwords) are masked by ``redact``, which the core applies to every error
    it logs or stores for this notifier.
    """

    type: ClassVar[str] = ""
    options: ClassVar[dict[str, Setting]] = {}
    resend_interval: float = 0.0

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.name: str = settings.get("name") or self.type

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """Validate settings that depend on each other; raise ValueError if not.

        Called while the configuration is validated, with every key parsed.
        """

    def send(self, notification: Notification) -> None:
        raise NotImplementedError

    def resend(self, alerts: list[Alert]) -> None:
        """Send the alerts still firing again, every ``resend_interval`` seconds.

        Only for receivers that expire an alert that is not sent again
        (Alertmanager); the default does nothing, and 0 turns it off.
        """

    def redact(self, text: str) -> str:
        """Return ``text`` with every secret setting of this notifier masked."""
        return redact(text, self.secrets())

    def secrets(self) -> list[str]:
        """Return the secret values in this notifier's settings and mappings."""
        values = list(self.settings.values())
        for value in self.settings.values():
            if isinstance(value, dict):
                values.extend(value.values())
        return [
            value.reveal()
            for value in values
            if isinstance(value, Secret) and value.reveal()
        ]

    def __str__(self) -> str:
        return self.name


def redact(text: str, secrets: Iterable[str]) -> str:
    """Mask each secret in ``text``; of a URL, the path, query and password.

    A URL keeps its scheme, host and port, so a log line still shows where a
    delivery went. Its parts are masked one by one too, because error
    messages often quote only the path, or the password without the rest.
    """
    fragments: set[str] = set()
    for secret in secrets:
        parts = urllib.parse.urlsplit(secret)
        if not (parts.scheme and parts.netloc):
            fragments.add(secret)
            continue
        tail = secret.split(parts.netloc, 1)[1]
        fragments.update(
            fragment
            for fragment in (tail, parts.path, parts.query, parts.password)
            if fragment and len(fragment) > 1
        )
    for fragment in sorted(fragments, key=len, reverse=True):
        text = text.replace(fragment, "***")
    return text
