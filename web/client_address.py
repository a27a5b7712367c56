"""Where a request comes from: the client's address and the device fingerprint the page sends.

The client's address is the TCP peer's unless the peer is a reverse proxy the operator trusts
(``BIDROOM_TRUSTED_PROXIES``): then ``X-Forwarded-For`` is read from the right, skipping
trusted proxies, and the first address that is not one is the client (the left part of the
header is whatever the client sent, so it is never believed). A malformed entry stops the walk
at the last trusted hop's peer. The uvicorn server is run with ``proxy_headers=False`` so this
is the only rule (web.cli).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from starlette.requests import Request

__all__ = ["FINGERPRINT_HEADER", "client_address", "request_addresses"]

#: The header a page sends with the device fingerprint it computed (market.tendering.rules
#: checks its shape).
FINGERPRINT_HEADER: Final = "X-Device-Fingerprint"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(peer: str, forwarded_for: str | None, trusted: Iterable[str]) -> str:
    """The client's address given the TCP ``peer``, the ``X-Forwarded-For`` header and the
    trusted proxies' networks."""
    networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def is_trusted(text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in net for net in networks)

    if not networks or not forwarded_for or not is_trusted(peer):
        return peer
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            return client
        client = str(address)
        if not is_trusted(client):
            return client
    return client


def request_addresses(request: Request, trusted: Iterable[str]) -> tuple[str, str]:
    """(client address, TCP peer address) of a request."""
    peer = request.client.host if request.client is not None else ""
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted), peer
