"""Example encmond plugin: warns when a server restarted recently.

A restart during a migration can mean a crash, a failover or a parameter
change, each worth a look before the cutover.
"""

from encmond import Check, Result, Status, hookimpl
from encmond.settings import Setting, positive_duration


class ServerUptime(Check):
    """Reads the Uptime status variable of each server."""

    name = "server_uptime"
    scope = "server"
    interval = 60.0
    options = {
        "min_uptime": Setting(
            positive_duration, 600.0, "uptime below which the check warns"
        ),
    }

    def run(self, ctx):
        row = ctx.server.query_one("SHOW GLOBAL STATUS LIKE 'Uptime'")
        uptime = int(row["Value"])
        minimum = self.settings["min_uptime"]
        status = Status.WARNING if uptime < minimum else Status.OK
        return [
            Result(
                subject=ctx.name,
                status=status,
                message=f"up for {uptime} s",
                metrics={"uptime_seconds": uptime},
            )
        ]


@hookimpl
def register_checks():
    return [ServerUptime]
