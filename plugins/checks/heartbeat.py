"""The ``heartbeat`` check: the heartbeat table's settings, and its writer.

With ``table`` set, ``replica_lag`` reads a pt-heartbeat table for sub-second
lag. With ``write: true`` as well, this check updates the source's row every
``interval``, which needs ``GRANT INSERT, UPDATE ON <table>`` for encmond's
user on the source; otherwise pt-heartbeat writes it, and ``interval`` must
match its ``--interval``.
"""

from __future__ import annotations

from encmond import Check, Result, Status, hookimpl
from encmond.config import parse_table
from encmond.heartbeat import source_server_id, write
from encmond.settings import Setting, boolean, integer


def optional_table(value):
    return None if value is None else parse_table(value)


def optional_server_id(value):
    return None if value is None else integer(1, 2**32 - 1)(value)


class Heartbeat(Check):
    """Writes the source's heartbeat row when ``write`` is true."""

    name = "heartbeat"
    scope = "server"
    interval = 1.0
    timeout = 10.0
    options = {
        "table": Setting(
            optional_table,
            None,
            "pt-heartbeat table as schema.table, null for no heartbeat",
        ),
        "server_id": Setting(
            optional_server_id,
            None,
            "server_id of the row to read and write, null for the source's",
        ),
        "write": Setting(boolean, False, "update the row on the source every interval"),
    }

    def __init__(self, settings):
        super().__init__(settings)
        self.server_id: int | None = settings["server_id"]

    def run(self, ctx):
        table = self.settings["table"]
        if table is None or not self.settings["write"] or ctx.server is not ctx.source:
            return []
        if self.server_id is None:
            self.server_id = source_server_id(ctx.source)
        written = write(ctx.source, table, self.server_id)
        return [
            Result(
                "heartbeat",
                Status.OK,
                f"heartbeat row of server_id {self.server_id} written to {table}",
                details={"ts": written, "table": str(table)},
            )
        ]


@hookimpl
def register_checks():
    return [Heartbeat]
