"""Outbound webhooks: one JSON POST through the egress policy, whose outcome is returned as a
value (never raised), so the caller records it where a person can read it.

Judge drift alerts (services/calibration.py) and monitors (services/monitors.py) send through
here; the egress policy (ASSAY_EGRESS_ALLOW) decides where a webhook may go, as it does for
model calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from assay.services.egress import EgressPolicy, guarded_client

TIMEOUT_SECONDS = 10.0
#: The most of a receiver's refusal kept with a delivery (its reason, not its whole page).
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class Delivery:
    #: Whether the receiver took it (a 2xx answer).
    ok: bool
    #: The receiver's status code ("204"), or "not sent: why" / "HTTP 500: what it said".
    detail: str


def post_json(
    policy: EgressPolicy, url: str, body: Mapping[str, Any], timeout: float = TIMEOUT_SECONDS
) -> Delivery:
    """POST ``body`` as JSON to ``url``; what happened, never an exception."""
    try:
        policy.check_url(url)
        with guarded_client(policy, timeout) as client:
            sent = client.post(
                url, content=orjson.dumps(body), headers={"content-type": "application/json"}
            )
    except Exception as error:  # a webhook must never fail the work that sent it
        return Delivery(False, f"not sent: {error}"[:MAX_DETAIL_CHARS])
    if 200 <= sent.status_code < 300:
        return Delivery(True, str(sent.status_code))
    said = " ".join(sent.text.split())[:200]
    return Delivery(False, f"HTTP {sent.status_code}{': ' + said if said else ''}")


def absolute(public_url: str, path: str) -> str:
    """A page's link for a message read outside Assay: under ASSAY_PUBLIC_URL when set."""
    return f"{public_url.rstrip('/')}{path}" if public_url else path
