"""The ``row_count`` check: exact, pinned row counts per chunk of the key."""

from __future__ import annotations

from encmond import hookimpl
from encmond.settings import Setting, positive_duration
from encmond.validation.check import OPTIONS, ValidationCheck
from encmond.validation.rowhash import CountMeasure


class RowCount(ValidationCheck):
    """Compares exact row counts chunk by chunk; a mismatch names the key range."""

    name = "row_count"
    interval = 60.0
    measure = CountMeasure()
    options = {
        "wait_timeout": Setting(
            positive_duration,
            30.0,
            "how long a chunk waits for the target to reach the source position",
        ),
        **OPTIONS,
    }


@hookimpl
def register_checks():
    return [RowCount]
