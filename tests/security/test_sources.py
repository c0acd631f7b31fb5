"""From where: the client address the throttles and the audit use, and whose X-Forwarded-For counts."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from payment_core.api import create_app
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from payment_core.sources import UNKNOWN, client_address, throttle_key
from tests.security.conftest import enroll_body, from_address

PROXY_SECRET = secrets.token_urlsafe(32)  # the proxy's own (tests/security/test_proxy_secret.py: without it)


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy() -> None:
    proxies = ("10.0.0.5", "192.168.1.0/24")
    assert client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"  # not a proxy: ignored
    assert client_address("10.0.0.5", "198.51.100.1", proxies) == "198.51.100.1"
    # The right-most hop that is not a trusted proxy: a client cannot prepend its own choice.
    assert client_address("10.0.0.5", "6.6.6.6, 198.51.100.1, 192.168.1.7", proxies) == "198.51.100.1"
    assert client_address("10.0.0.5", "not-an-address", proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("::ffff:203.0.113.9", None, ()) == "203.0.113.9"
    assert client_address(None, None, ()) == UNKNOWN


def test_ipv6_clients_are_throttled_by_their_slash_64() -> None:
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") != throttle_key("2001:db8:1:2::1")
    assert throttle_key("127.0.0.66") == "127.0.0.66"


@pytest.fixture
def proxied_core(tmp_path: Path) -> Iterator[tuple[Core, ServerThread]]:
    config = CoreConfig(
        db_url=str(tmp_path / "core.db"),
        server_key=secrets.token_bytes(32),
        trusted_proxies=("127.0.0.2",),
        proxy_secret=PROXY_SECRET,
    )
    core = Core(config)
    core.migrate()
    with ServerThread(create_app(core)) as server:
        yield core, server
    core.close()


def test_only_a_trusted_proxy_names_the_client_in_the_audit(proxied_core: tuple[Core, ServerThread]) -> None:
    core, server = proxied_core
    body = enroll_body("nobody@example.jp", "a wrong password here", "000000")
    spoof = {"x-forwarded-for": "198.51.100.77"}
    with from_address(server.url, "127.0.0.1") as client:
        assert client.post("/v1/devices", json=body, headers=spoof).status_code == 401
    with from_address(server.url, "127.0.0.2") as proxy:
        vouched = {"x-forwarded-for": "203.0.113.5", "x-possim-proxy-secret": PROXY_SECRET}
        assert proxy.post("/v1/devices", json=body, headers=vouched).status_code == 401
    with core.transaction() as session:
        sources = list(session.scalars(select(AuditEvent.source).where(AuditEvent.action == "signin.new_device")))
    assert sources == ["127.0.0.1", "203.0.113.5"]  # the spoofed header from a non-proxy counted for nothing
