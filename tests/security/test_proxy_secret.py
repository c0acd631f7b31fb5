"""Issue 13: with ``--trust-proxy 127.0.0.1`` any local process chose its own throttle address.

Every local process connects from 127.0.0.1, as the web wallet's server does, so trusting that address
let anything on the machine name its own client in ``X-Forwarded-For`` and step round every per-address
throttle. Now the core believes the header only with the proxy's secret, a new random one each run of
``possim core serve --trust-proxy`` in a file only its user can read, which ``possim wallet web`` sends
with each call it forwards.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from payment_core import sources
from payment_core.config import CoreConfig
from payment_core.core import Core
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from possim import world
from possim.cli import main
from protocol import ManualClock
from tests.conftest import Database
from tests.security.conftest import enroll_body, from_address
from wallet_app.web_server import PROXY_SECRET_HEADER, ProxySecretFile, create_web_app

SECRET = secrets.token_urlsafe(32)
WRONG_PASSWORD = enroll_body("nobody@example.jp", "a wrong password here", "000000")


@pytest.fixture
def proxied_core(database: Database, clock: ManualClock) -> Iterator[tuple[Core, ServerThread]]:
    """A core that trusts 127.0.0.1 as its proxy, with this run's secret."""
    config = CoreConfig(
        db_url=database.url,
        db_schema=database.schema,
        server_key=secrets.token_bytes(32),
        trusted_proxies=("127.0.0.1",),
        proxy_secret=SECRET,
        clock=clock,
    )
    core = Core(config)
    core.migrate()
    with world.serve(core) as server:
        yield core, server
    core.close()


def _sources(core: Core, action: str = "signin.new_device") -> list[str | None]:
    with core.transaction() as session:
        return list(session.scalars(select(AuditEvent.source).where(AuditEvent.action == action)))


def test_a_local_process_without_the_secret_cannot_pick_its_throttle_address(
    proxied_core: tuple[Core, ServerThread], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: from 127.0.0.1, a new made-up X-Forwarded-For for every guess. Each guess counts as
    127.0.0.1's own, so the address's backoff stops it after five failures."""
    core, server = proxied_core
    monkeypatch.setattr(sources._Warned, "last", float("-inf"))  # the warning is once a minute per process
    statuses = []
    with caplog.at_level(logging.WARNING, "possim.core"), from_address(server.url, "127.0.0.1") as local:
        for n in range(8):
            headers = {"x-forwarded-for": f"203.0.113.{n + 1}"}
            if n % 2:  # a guessed secret is no better than none
                headers[PROXY_SECRET_HEADER] = secrets.token_urlsafe(32)
            statuses.append(local.post("/v1/devices", json=WRONG_PASSWORD, headers=headers).status_code)
    assert statuses[:5] == [401] * 5
    assert 429 in statuses[5:]  # throttled as 127.0.0.1: the made-up addresses counted for nothing
    assert set(_sources(core)) == {"127.0.0.1"}
    warnings = [record.getMessage() for record in caplog.records if "X-Forwarded-For" in record.getMessage()]
    assert len(warnings) == 1  # once a minute, however many tries
    assert "without the proxy's secret" in warnings[0] and "203.0.113" not in caplog.text


def test_the_proxy_with_the_secret_names_the_client_and_nobody_else_does(
    proxied_core: tuple[Core, ServerThread], clock: ManualClock
) -> None:
    core, server = proxied_core
    with from_address(server.url, "127.0.0.1") as proxy:
        vouched = {"x-forwarded-for": "203.0.113.5", PROXY_SECRET_HEADER: SECRET}
        assert proxy.post("/v1/devices", json=WRONG_PASSWORD, headers=vouched).status_code == 401
    clock.advance(60)
    with from_address(server.url, "127.0.0.9") as stranger:  # the secret from an address not trusted: ignored
        stolen = {"x-forwarded-for": "203.0.113.6", PROXY_SECRET_HEADER: SECRET}
        assert stranger.post("/v1/devices", json=WRONG_PASSWORD, headers=stolen).status_code == 401
    assert _sources(core) == ["203.0.113.5", "127.0.0.9"]
    # A core given no secret believes no one's X-Forwarded-For, even from its trusted address.
    assert sources.request_source("127.0.0.1", {"x-forwarded-for": "203.0.113.7"}, ("127.0.0.1",), None) == (
        "127.0.0.1"
    )
    assert not sources.proxy_vouched(None, "") and not sources.proxy_vouched(SECRET, SECRET + "x")
    assert sources.proxy_vouched(SECRET, SECRET) and not sources.proxy_vouched(SECRET, "ünïcode")
    assert sources.PROXY_SECRET_HEADER.lower() == PROXY_SECRET_HEADER  # the wallet cannot import the core


def test_the_web_wallet_forwards_the_browser_with_the_secret_and_drops_a_browser_s_own_headers(
    proxied_core: tuple[Core, ServerThread], tmp_path: Path, clock: ManualClock
) -> None:
    core, server = proxied_core
    secret_file = tmp_path / "proxy.secret"
    secret_file.write_text(SECRET + "\n")
    with ServerThread(create_web_app(server.url, proxy_secret=ProxySecretFile(secret_file))) as web:
        with from_address(web.url, "127.0.0.77") as browser:
            assert browser.post("/v1/devices", json=WRONG_PASSWORD).status_code == 401
            clock.advance(60)
            forged = {"x-forwarded-for": "198.51.100.1", PROXY_SECRET_HEADER: "forged"}
            assert browser.post("/v1/devices", json=WRONG_PASSWORD, headers=forged).status_code == 401
        clock.advance(60)
        secret_file.unlink()  # no secret (a core started without --trust-proxy): the wallet server's own address
        with from_address(web.url, "127.0.0.78") as browser:
            assert browser.post("/v1/devices", json=WRONG_PASSWORD).status_code == 401
    assert _sources(core) == ["127.0.0.77", "127.0.0.77", "127.0.0.1"]


def test_the_secret_file_is_read_again_when_a_new_core_writes_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "proxy.secret"
    reader = ProxySecretFile(path)
    assert reader.current() is None
    path.write_text("first-secret\n")
    assert reader.current() == "first-secret"
    replacement = tmp_path / "next"
    replacement.write_text("second-secret\n")
    os.replace(replacement, path)
    assert reader.current() == "second-secret"
    assert "second-secret" not in repr(reader)


def _captured_app(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> FastAPI:
    """What the command would serve: uvicorn.run is the one part replaced, and only to hand the app back."""
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_options: served.append(app))
    assert main(argv) == 0
    [app] = served
    assert isinstance(app, FastAPI)
    return app


def test_the_readme_setup_core_serve_trust_proxy_and_wallet_web(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`possim core serve --trust-proxy 127.0.0.1` and `possim wallet web --core URL`, as the README has them."""
    monkeypatch.setenv("POSSIM_HOME", str(tmp_path / "home"))
    store = ["--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    serve = ["core", "serve", *store, "--trust-proxy", "127.0.0.1", "--port", "0"]
    secret_file = tmp_path / "home" / "proxy.secret"

    first_app = _captured_app(monkeypatch, serve)
    first = secret_file.read_text().strip()
    first_app.state.core.close()
    core_app = _captured_app(monkeypatch, serve)  # each run: a new secret
    secret = secret_file.read_text().strip()
    core: Core = core_app.state.core
    assert secret != first and len(secret) >= 43 and core.config.proxy_secret == secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err and str(secret_file) in printed.out
    try:
        with ServerThread(core_app) as core_server:
            web_app = _captured_app(monkeypatch, ["wallet", "web", "--core", core_server.url])
            with ServerThread(web_app) as web:
                with from_address(web.url, "127.0.0.80") as browser:
                    assert browser.post("/v1/devices", json=WRONG_PASSWORD).status_code == 401
                with from_address(core_server.url, "127.0.0.1") as local:
                    spoof = {"x-forwarded-for": "127.0.0.81", PROXY_SECRET_HEADER: first}  # last run's secret
                    assert local.post("/v1/devices", json=WRONG_PASSWORD, headers=spoof).status_code == 401
        assert _sources(core) == ["127.0.0.80", "127.0.0.1"]
    finally:
        core.close()


def test_core_serve_says_so_when_it_cannot_write_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_options: served.append(app))
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    store = ["--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    argv = ["core", "serve", *store, "--trust-proxy", "127.0.0.1", "--proxy-secret-file", str(blocked / "secret")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"possim core: cannot write the proxy secret to {blocked / 'secret'}" in error
    assert "Traceback" not in error and served == []  # nothing is served without a secret the proxy can read
