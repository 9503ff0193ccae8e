"""JSON responses shared by the web app and the modules that add routes to it."""

from __future__ import annotations

import json
from typing import Any

import bottle


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> bottle.HTTPResponse:
    """Return ``data`` as a JSON response; NaN or infinity raise ValueError."""
    body = json.dumps(data, default=str, allow_nan=False)
    return bottle.HTTPResponse(
        body=body,
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(status: int, message: str, **extra: Any) -> bottle.HTTPResponse:
    """Return ``{"error": message, ...extra}`` with the given status."""
    return json_response({"error": message, **extra}, status)
