"""The ``checksum`` check: chunked, pinned row hashes that name differing rows."""

from __future__ import annotations

from encmond import hookimpl
from encmond.settings import Setting, positive_duration
from encmond.validation.check import OPTIONS, ValidationCheck
from encmond.validation.rowhash import HashMeasure


class Checksum(ValidationCheck):
    """Compares row hashes chunk by chunk and localises the rows that differ."""

    name = "checksum"
    interval = 900.0
    measure = HashMeasure()
    options = {
        "wait_timeout": Setting(
            positive_duration,
            60.0,
            "how long a chunk waits for the target to reach the source position",
        ),
        **OPTIONS,
    }


@hookimpl
def register_checks():
    return [Checksum]
