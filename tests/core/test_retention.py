"""Retention (``payment_core.retention``): the replay and guessing records are forgotten once no window
reads them, never sooner; money and the audit trail are never pruned; the job is audited, bounded in
batches, run by ``possim admin prune`` and by ``possim core serve``'s own thread. Both stores."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from payment_core.config import Retention
from payment_core.core import Core
from payment_core.models import (
    AddressBlock,
    AuditEvent,
    AuthSession,
    Base,
    CardCodeTry,
    CodeFailure,
    Journal,
    OutboxMessage,
    PasswordReset,
    Payment,
    RefreshToken,
    RequestNonce,
    SigninAttempt,
    UsedCode,
)
from payment_core.retention import ACTION, Pruner, prune
from possim.cli import main
from protocol import ManualClock
from tests.support import SignedCaller, fund_wallet
from wallet_app.minter import CodeMinter
from wallet_app.state import WalletState

OLD, RECENT = timedelta(days=40), timedelta(seconds=30)


def _rows(core: Core, account_id: int, age: timedelta, tag: str) -> None:
    """One row of every pruned kind, ``age`` old."""
    at = core.now() - age
    with core.transaction() as session:
        session.add_all(
            [
                RequestNonce(key_id=f"term_{tag}", nonce=f"n-{tag}", seen_at=at),
                UsedCode(use_key=f"use-{tag}", device_id=1, used_at=at, used_by="register"),
                CodeFailure(terminal_id=f"term-{tag}", device_id=1, at=at),
                SigninAttempt(
                    source="127.9.9.9", place="127.9.9.0/24", subject=f"subject-{tag}", outcome="failed", at=at
                ),
                CardCodeTry(
                    card_key=f"card-{tag}", account_id=account_id, device_id=1, source="127.9.9.9", right=False, at=at
                ),
                PasswordReset(account_id=account_id, token_hash=f"h-{tag}", created_at=at, expires_at=at + RECENT),
                AddressBlock(source=f"range-{tag}", reason="list_attack", blocked_at=at, blocked_until=at),
                OutboxMessage(channel="email", to="old@example.jp", subject=f"mail-{tag}", body="b", created_at=at),
            ]
        )
        session.add(AuthSession(id=f"s-{tag}", account_id=account_id, created_at=at, expires_at=at + RECENT))
        session.flush()
        session.add(RefreshToken(token_hash=f"r-{tag}", session_id=f"s-{tag}", issued_at=at, expires_at=at + RECENT))


def _count(core: Core, model: type[Base]) -> int:
    with core.transaction() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


_TAGGED = (  # the column of each pruned kind that names the row _rows made
    RequestNonce.nonce,
    UsedCode.use_key,
    CodeFailure.terminal_id,
    SigninAttempt.subject,
    CardCodeTry.card_key,
    PasswordReset.token_hash,
    AddressBlock.source,
    OutboxMessage.subject,
    AuthSession.id,
    RefreshToken.token_hash,
)


def _tags_left(core: Core, tag: str) -> int:
    """How many of the rows _rows made with ``tag`` are still there (10 when all are)."""
    with core.transaction() as session:
        return sum(
            int(session.execute(select(func.count()).where(column.like(f"%{tag}"))).scalar_one()) for column in _TAGGED
        )


def test_prune_forgets_what_no_window_reads_and_keeps_the_rest(core: Core, wallet: WalletState) -> None:
    prune(core)  # what the wallet's three-day-old sign-up left behind
    _rows(core, wallet.account_id, OLD, "old")
    _rows(core, wallet.account_id, RECENT, "new")
    audit_before = _count(core, AuditEvent)
    deleted = prune(core, actor="admin:test")
    assert _tags_left(core, "-old") == 0 and _tags_left(core, "-new") == len(_TAGGED)
    assert deleted == {
        "request_nonces": 1,
        "used_codes": 1,
        "code_failures": 1,
        "signin_attempts": 1,
        "card_code_tries": 1,
        "password_resets": 1,
        "address_blocks": 1,
        "outbox": 1,
        "auth_sessions": 1,  # with its refresh token
    }
    with core.transaction() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == ACTION, AuditEvent.actor == "admin:test")
        ).one()
    assert event.actor == "admin:test" and json.loads(event.detail)["used_codes"] == 1
    assert _count(core, AuditEvent) == audit_before + 1
    assert prune(core) == dict.fromkeys(deleted, 0)  # nothing left; a run that found nothing is not audited
    assert _count(core, AuditEvent) == audit_before + 1


def test_each_row_is_kept_as_long_as_its_window_whatever_retention_says(core: Core, wallet: WalletState) -> None:
    # Retention set to nothing: still every guard keeps what its window reads (a card's wrong codes 30 days,
    # a used code past its life, sign-in attempts for the longest window)
    _rows(core, wallet.account_id, timedelta(days=20), "twenty-days")
    _rows(core, wallet.account_id, timedelta(minutes=30), "half-hour")
    prune(core, settings=Retention(used_codes_hours=0, code_failures_hours=0))
    with core.transaction() as session:
        tries = set(session.scalars(select(CardCodeTry.card_key)))
        attempts = set(session.scalars(select(SigninAttempt.subject)))
        failures = set(session.scalars(select(CodeFailure.terminal_id)))
    assert {"card-twenty-days", "card-half-hour"} <= tries  # the issuer's check looks back 30 days
    assert "subject-half-hour" in attempts and "subject-twenty-days" not in attempts  # the longest window: 60 min
    assert "term-half-hour" in failures and "term-twenty-days" not in failures  # the day's guessing window


def test_a_code_used_a_moment_ago_is_still_refused_after_a_prune(
    core: Core, terminal: SignedCaller, minter: CodeMinter
) -> None:
    fund_wallet(terminal, minter, 5_000)
    code = minter.mint().numeric
    assert terminal.pay("kept-1", 1_000, code).json()["status"] == "succeeded"
    prune(core, actor="admin:test")
    replayed = terminal.pay("kept-2", 1_000, code)
    assert replayed.json()["error"]["code"] == "code_already_used"
    with core.transaction() as session:  # money is never pruned: the payment and the refused replay stay
        kept = sorted(session.scalars(select(Payment.order_id)))
    assert kept == ["kept-1", "kept-2"] and _count(core, Journal) >= 2


def test_prune_works_in_small_batches_each_its_own_transaction(core: Core, wallet: WalletState) -> None:
    at = core.now() - OLD
    with core.transaction() as session:
        session.add_all([UsedCode(use_key=f"u{n}", device_id=1, used_at=at, used_by="r") for n in range(25)])
    assert prune(core, settings=Retention(batch=4))["used_codes"] == 25 and _count(core, UsedCode) == 0


def test_the_servers_pruner_thread_prunes_on_its_own(core: Core, wallet: WalletState) -> None:
    _rows(core, wallet.account_id, OLD, "old")
    pruner = Pruner(core, every_seconds=3600).start()  # woken by the test rather than waited for
    try:
        pruner.run_now()
    finally:
        pruner.stop()
    assert pruner.done >= 9 and _count(core, OutboxMessage) == _count_recent_mail(core)
    with core.transaction() as session:
        assert session.scalars(select(AuditEvent.actor).where(AuditEvent.action == ACTION)).all() == ["core"]


def _count_recent_mail(core: Core) -> int:
    cut: datetime = core.now() - timedelta(days=30)
    with core.transaction() as session:
        return int(session.execute(select(func.count()).where(OutboxMessage.created_at >= cut)).scalar_one())


@pytest.mark.parametrize("as_json", [True, False])
def test_prune_from_the_command_line(
    core: Core,
    wallet: WalletState,
    clock: ManualClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    as_json: bool,
) -> None:
    _rows(core, wallet.account_id, OLD, "old")
    key_file = tmp_path / "server.key"
    key_file.write_text(core.config.server_key.hex())
    key_file.chmod(0o600)
    store = ["--db", core.config.db_url, "--key-file", str(key_file)]
    store += ["--db-schema", core.config.db_schema] if core.config.db_schema else []
    assert main(["admin", *store, "prune", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["deleted"]["outbox"] == 1
    else:
        assert out.startswith("pruned ") and "outbox 1" in out
    with core.transaction() as session:
        actors = session.scalars(select(AuditEvent.actor).where(AuditEvent.action == ACTION)).all()
    assert len(actors) == 1 and actors[0].startswith("admin:")
