"""From where a request came: the client address every audit event and every throttle is keyed on.

The address is the TCP peer, unless the peer is a trusted proxy (``CoreConfig.trusted_proxies``, the
web wallet's own server) **and** the request carries the proxy's secret (``CoreConfig.proxy_secret`` in
``X-Possim-Proxy-Secret``, compared in constant time): then it is the right-most address in
``X-Forwarded-For`` that is not itself a trusted proxy. Anyone else's ``X-Forwarded-For`` is ignored, so
a client cannot pick its own address to dodge a throttle. The address alone does not prove the proxy:
every local process connects from 127.0.0.1, as the web wallet's server does; the secret (a new random one
each run of ``possim core serve --trust-proxy``, in a file only its user can read) does. A forwarded-for
header from a trusted address without the secret is logged (the peer, never the header's values) at most
once a minute.

Throttles count an IPv6 client by its /64 (one host usually holds a whole /64) and IPv4 by its address.

The API sets ``current_source`` for the request it serves (the worker thread that runs the handler
gets a copy of the context); ``audit.record`` reads it, so every event says from where. Outside a
request it is ``"local"`` (admin commands, tests calling the domain directly).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar

current_source: ContextVar[str] = ContextVar("possim_request_source", default="local")
UNKNOWN = "unknown"
PROXY_SECRET_HEADER = "X-Possim-Proxy-Secret"  # noqa: S105 (a header's name)
FORWARDED_FOR_HEADER = "X-Forwarded-For"
_WARN_EVERY_SECONDS = 60.0
log = logging.getLogger("possim.core")


class _Warned:
    """When the unvouched X-Forwarded-For warning was last logged (``time.monotonic``), per process."""

    lock = threading.Lock()
    last = float("-inf")


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


def proxy_vouched(expected: str | None, presented: str | None) -> bool:
    """Whether ``presented`` is the proxy's secret (constant time); never, when the core has none."""
    if not expected or presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "surrogateescape"))


def request_source(
    peer: str | None, headers: Mapping[str, str], trusted_proxies: Iterable[str], proxy_secret: str | None
) -> str:
    """The address to account a request to: :func:`client_address`, given ``X-Forwarded-For`` only when the
    request carries the proxy's secret (see the module's docstring)."""
    forwarded_for = headers.get(FORWARDED_FOR_HEADER.lower())
    if forwarded_for is None:
        return client_address(peer, None, trusted_proxies)
    if proxy_vouched(proxy_secret, headers.get(PROXY_SECRET_HEADER.lower())):
        return client_address(peer, forwarded_for, trusted_proxies)
    source = client_address(peer, None, trusted_proxies)
    if is_trusted_proxy(peer, trusted_proxies):
        _warn_unvouched(source)
    return source


def is_trusted_proxy(peer: str | None, trusted_proxies: Iterable[str]) -> bool:
    parsed = _parse(peer or "")
    return parsed is not None and any(parsed in ipaddress.ip_network(net, strict=False) for net in trusted_proxies)


def _warn_unvouched(peer: str) -> None:
    """A trusted address sent X-Forwarded-For without the secret: another local process posing as the proxy,
    or a proxy started without the secret. Said at most once a minute (a flood must not flood the log)."""
    now = time.monotonic()
    with _Warned.lock:
        if now - _Warned.last < _WARN_EVERY_SECONDS:
            return
        _Warned.last = now
    log.warning(
        "X-Forwarded-For from %s without the proxy's secret: ignored, the request counts as %s's own", peer, peer
    )


@functools.lru_cache(maxsize=4096)  # a pure function of a string, asked more than once a sign-in
def throttle_key(source: str) -> str:
    """What a throttle counts: an IPv4 address, or the /64 an IPv6 address is in."""
    parsed = _parse(source)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else source[:64]
