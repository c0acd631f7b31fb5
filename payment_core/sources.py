"""From where a request came: the client address every audit event and every throttle is keyed on.

The address is the TCP peer, unless the peer is a trusted proxy (``CoreConfig.trusted_proxies``, the
web wallet's own server): then it is the right-most address in ``X-Forwarded-For`` that is not itself a
trusted proxy. Anyone else's ``X-Forwarded-For`` is ignored, so a client cannot pick its own address
to dodge a throttle.

Throttles count an IPv6 client by its /64 (one host usually holds a whole /64) and IPv4 by its address.

The API sets ``current_source`` for the request it serves (the worker thread that runs the handler
gets a copy of the context); ``audit.record`` reads it, so every event says from where. Outside a
request it is ``"local"`` (admin commands, tests calling the domain directly).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from contextvars import ContextVar

current_source: ContextVar[str] = ContextVar("possim_request_source", default="local")
UNKNOWN = "unknown"


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxies: Iterable[str]) -> str:
    """The address to account the request to (see the module's docstring)."""
    trusted = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]

    def is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in network for network in trusted)

    parsed_peer = _parse(peer or "")
    if parsed_peer is None:
        return UNKNOWN
    if not is_trusted(parsed_peer) or not forwarded_for:
        return str(parsed_peer)
    for hop in reversed(forwarded_for.split(",")):
        parsed_hop = _parse(hop)
        if parsed_hop is None:
            return str(parsed_peer)  # a garbled header: account to the proxy itself
        if not is_trusted(parsed_hop):
            return str(parsed_hop)
    return str(parsed_peer)


def throttle_key(source: str) -> str:
    """What a throttle counts: an IPv4 address, or the /64 an IPv6 address is in."""
    parsed = _parse(source)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else source[:64]
