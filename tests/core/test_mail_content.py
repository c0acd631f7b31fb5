"""Issue 13: what a stranger could put in a mail, and in the terminal that reads the outbox.

A display name with line breaks and a URL landed in the verification mail, which goes to any address the
signer-up names; ESC and NUL were accepted in e-mail addresses (by the domain and ``possim admin
account-add``), and ``possim outbox`` printed them raw to the terminal. Now addresses are checked strictly
in one place (``accounts.normalise_email``), display names take no control character, the verification
mail holds nothing the signer-up typed, and ``possim outbox`` escapes control characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from payment_core import accounts, outbox
from payment_core.config import CoreConfig, load_server_key
from payment_core.core import Core
from payment_core.models import Account, OutboxMessage
from payment_core.schemas import NAME_PATTERN
from payment_core.server import ServerThread
from possim.cli import main
from protocol import ErrorCode, ProtocolError
from tests.security.conftest import from_address
from tests.support import PASSWORD, PHONE, mailbox, mailed_code

SPAM = "Hanako\r\n\r\nYou won 1,000,000 yen! Claim it at https://evil.example/claim"
BAD_ADDRESSES = [
    "victim\x1b[2J\x1b]0;pwned\x07@example.jp",  # ESC: clear the screen, set the window title
    "vic\x00tim@example.jp",
    "victim@exa\x1bmple.jp",
    "vic tim@example.jp",
    "victim@example.jp\r\nBcc: everyone@example.jp",
    "victim@localhost",
    "a" * 65 + "@example.jp",
    "victim@" + "b" * 64 + ".jp",
    "victim@" + ".".join(["example"] * 40) + ".jp",  # 300 characters
]


def _accounts(core: Core) -> int:
    with core.transaction() as session:
        return int(session.execute(select(func.count()).select_from(Account)).scalar_one())


def _sign_up(server: ServerThread, body: dict[str, object]) -> httpx.Response:
    with from_address(server.url, "127.0.13.1") as client:
        return client.post("/v1/accounts", json={"phone": PHONE, "password": PASSWORD} | body)


def test_a_display_name_with_line_breaks_is_refused_and_none_reaches_an_unverified_address(
    core: Core, server: ServerThread
) -> None:
    refused = _sign_up(server, {"email": "stranger@example.jp", "display_name": SPAM})
    assert refused.status_code == 422
    assert refused.json()["error"]["param"] == "display_name"
    assert "line breaks or control characters" in refused.json()["error"]["message"]
    for name in ("Hana\x1b[31mko", "Hana\u2028ko", "Hana\u202eko", "Hana\x00ko"):
        assert _sign_up(server, {"email": "stranger@example.jp", "display_name": name}).status_code == 422
    assert mailbox(core, "stranger@example.jp") == [] and _accounts(core) == 0

    # One line, a URL: a fine display name, but the address is not proven, so the mail does not carry it.
    lure = "Claim your prize at https://evil.example/claim"
    assert _sign_up(server, {"email": "stranger@example.jp", "display_name": lure}).status_code == 202
    [mail] = mailbox(core, "stranger@example.jp")
    assert "evil.example" not in mail and "prize" not in mail
    assert mail.startswith("Hello,\n") and mailed_code(core, "stranger@example.jp") in mail
    with core.transaction() as session:
        assert session.scalars(select(Account.display_name)).one() == lure  # kept for the wallet itself


def test_an_e_mail_address_with_control_characters_or_bad_syntax_gets_no_account(
    core: Core, server: ServerThread
) -> None:
    for address in BAD_ADDRESSES:
        assert _sign_up(server, {"email": address}).status_code == 422, repr(address)
        with pytest.raises(ProtocolError) as domain:  # the domain itself, whoever calls it
            accounts.sign_up(core, address, PHONE, PASSWORD)
        assert (domain.value.code, domain.value.param) == (ErrorCode.VALIDATION_FAILED, "email")
        with pytest.raises(ProtocolError) as operator:
            accounts.create_account(core, address, PASSWORD)
        assert operator.value.message == "That is not an e-mail address."
    assert _accounts(core) == 0
    core.drain()
    with core.transaction() as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
    accounts.sign_up(core, "  Hanako.Yamada+wallet@Example.JP ", PHONE, PASSWORD, "  Hanako  ")
    with core.transaction() as session:
        made = session.scalars(select(Account)).one()
    assert (made.email, made.display_name) == ("hanako.yamada+wallet@example.jp", "Hanako")


def test_possim_admin_account_add_refuses_an_address_with_escape_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSSIM_PASSWORD", "a long enough password")
    store = ["--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    assert main(["admin", *store, "account-add", "--email", BAD_ADDRESSES[0]]) != 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err
    assert "not an e-mail address" in captured.err


def test_possim_outbox_escapes_control_characters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A row written before the checks (or any text a sender chose) still never reaches the terminal raw."""
    store = ["--db", str(tmp_path / "core.db"), "--key-file", str(tmp_path / "server.key")]
    core = Core(CoreConfig(db_url=str(tmp_path / "core.db"), server_key=load_server_key(tmp_path / "server.key")))
    core.migrate()
    to = "old\x1b]0;pwned\x07@example.jp"
    subject = "Hi\x1b[2J\u202eevil"
    body = "line one\n\tline two \x1b[31mred\x00 \x9b6n \u2028 end\r\n"
    with core.transaction() as session:
        outbox.send(session, outbox.EMAIL, to, subject, body, core.now())
    core.close()

    assert main(["outbox", *store]) == 0
    shown = capsys.readouterr().out
    assert not any(char in shown for char in "\x1b\x00\x07\x9b\u2028\u202e\r")
    assert "old\\x1b]0;pwned\\x07@example.jp" in shown and "Hi\\x1b[2J\\u202eevil" in shown
    assert "line one\n\tline two \\x1b[31mred\\x00 \\x9b6n \\u2028 end" in shown  # lines and tabs kept

    assert main(["outbox", *store, "--json"]) == 0
    line = capsys.readouterr().out
    assert not any(char in line for char in "\x1b\x00\x07\x9b\u2028\u202e\r")
    assert json.loads(line)["body"] == body  # escaped, not lost
    assert json.loads(line)["to"] == to and json.loads(line)["subject"] == subject


@pytest.mark.parametrize("name", ["Pixel\nVisit http://evil.example", "\x1b[31mred", "a\u202enip", "x" * 101])
def test_a_phones_name_that_would_reach_the_owners_mail_is_checked_like_a_display_name(
    core: Core, server: ServerThread, name: str
) -> None:
    """The new-phone notice mails the phone's name to the owner: line breaks, control characters and
    bidi overrides are refused with 422 on device_name before any password work, and nothing is mailed."""
    body = {"email": "owner@example.jp", "password": PASSWORD, "otp": "000000", "device_name": name}
    mails_before = len(outbox.messages(core))
    response = httpx.post(f"{server.url}/v1/devices", json=body, timeout=30)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "device_name"
    assert len(outbox.messages(core)) == mails_before


def test_an_ordinary_phones_name_is_kept_as_typed() -> None:
    assert accounts.clean_name("  Hanako's Pixel 8 📱 ", "device_name", "A phone's name") == "Hanako's Pixel 8 📱"
    assert accounts.clean_name("   ", "device_name", "A phone's name") is None


def test_the_published_name_pattern_is_what_clean_name_enforces() -> None:
    """Every character up to U+FFFF (but lone surrogates, which no JSON text decodes to here): the schema's
    NAME_PATTERN takes it exactly when accounts.clean_name does, so a schema-valid name is never refused."""
    pattern = re.compile(NAME_PATTERN)
    disagree = []
    for point in range(0x10000):
        if 0xD800 <= point <= 0xDFFF:
            continue
        name = f"a{chr(point)}b"
        try:
            accepted = accounts.clean_name(name, "device_name", "A phone's name") is not None
        except ProtocolError:
            accepted = False
        if accepted != bool(pattern.fullmatch(name)):
            disagree.append(hex(point))
    assert disagree == []
