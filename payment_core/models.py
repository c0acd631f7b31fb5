"""The core's tables. Amounts are integer yen; times are UTC (stored naive, returned aware)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC as a naive timestamp on every backend and hands back aware datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


# The rows of the payments index above. A query reaches that index only by saying the same with a literal
# (a bound parameter could be any status): payment_core.sweep uses this text too.
AWAITING_CUSTOMER_ROWS = "status = 'awaiting_customer'"
_AWAITING = text(AWAITING_CUSTOMER_ROWS)


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | frozen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The TOTP secret is derived from the server key and this salt (payment_core.keys), never stored.
    totp_salt: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # last accepted: no replay
    totp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    totp_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Failed password sign-ins in a row; at ``Throttling.account_max_failures`` the account locks (PCI DSS 8.3.4).
    signin_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    signin_locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class EmailVerification(Base):
    """The pending e-mail code of an account: only its keyed hash is kept; it burns after a few wrong tries."""

    __tablename__ = "email_verifications"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None once used or burnt
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Notification(Base):
    """Something the wallet shows: for every device of the account, or (``device_id``) for one device."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_account_created", "account_id", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """A simulated e-mail or SMS as sent: the user's mailbox, read with ``possim outbox``."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # email | sms
    to: Mapped[str] = mapped_column("to", String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Device(Base):
    """An enrolled phone. Its secret is never stored: it is derived from the server key and ``secret_salt``."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the device number in payment codes
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | revoked
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Merchant(Base):
    __tablename__ = "merchants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Terminal(Base):
    """A register, provisioned by an admin. Its secret is derived like a device's, never stored."""

    __tablename__ = "terminals"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_salt: Mapped[bytes] = mapped_column(LargeBinary(32))
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Loaded with the terminal (one SELECT): the request holds its terminal, so every look at the store's
    # name in the same request (the customer's notification, the answer) finds it in the session.
    merchant: Mapped[Merchant] = relationship(lazy="joined", viewonly=True)


class LedgerAccount(Base):
    """A book in the double-entry ledger. Only external clearing books may go below zero."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (CheckConstraint("balance >= 0 OR allow_negative = 1", name="ck_ledger_balance_floor"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # wallet | merchant | cash_clearing | card_clearing
    owner_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[int] = mapped_column(Integer, default=0)


class Journal(Base):
    __tablename__ = "journals"
    # The ledger itself refuses a second journal for the same act (TigerBeetle refuses a transfer id twice):
    # one payment, refund or top-up is posted once, whatever the code above it does.
    __table_args__ = (Index("uq_journals_kind_reference", "kind", "reference", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # payment | refund | topup
    reference: Mapped[str] = mapped_column(String(60), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Posting(Base):
    __tablename__ = "postings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journal_id: Mapped[int] = mapped_column(ForeignKey("journals.id"), index=True)
    ledger_account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # positive raises the book's balance


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("terminal_id", "order_id", name="uq_payment_order"),
        # The risk rules' velocity windows (payment_core.risk.velocity), counted from the index alone.
        Index("ix_payments_account_window", "account_id", "created_at", "device_id"),
        Index("ix_payments_merchant_window", "merchant_id", "created_at", "terminal_id"),
        # The payments waiting for their customer, oldest first (payment_core.sweep): only those rows.
        Index("ix_payments_awaiting", "created_at", "id", sqlite_where=_AWAITING, postgresql_where=_AWAITING),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    order_id: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # a protocol.PaymentStatus
    decline_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("payment_id", "refund_key", name="uq_refund_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    refund_key: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(20))  # requested | reversal
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Topup(Base):
    __tablename__ = "topups"
    __table_args__ = (UniqueConstraint("source", "topup_key", name="uq_topup_key"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(40))  # the terminal or device key id that asked
    topup_key: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), nullable=True, index=True)
    method: Mapped[str] = mapped_column(String(20))  # cash | card | bank
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))  # a protocol.TopupStatus
    decline_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    balance_after: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class UsedCode(Base):
    """Every payment code the core accepted: a second presentation of the same key is refused."""

    __tablename__ = "used_codes"
    use_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    device_id: Mapped[int] = mapped_column(Integer)
    used_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    used_by: Mapped[str] = mapped_column(String(60))


class CodeFailure(Base):
    """A code that failed its MAC: counted per device and per terminal to throttle guessing."""

    __tablename__ = "code_failures"
    __table_args__ = (
        Index("ix_code_failures_device_at", "device_id", "at"),
        Index("ix_code_failures_terminal_at", "terminal_id", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    terminal_id: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestNonce(Base):
    __tablename__ = "request_nonces"
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40), index=True)
    target: Mapped[str] = mapped_column(String(60))
    result: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    source: Mapped[str | None] = mapped_column(String(64), nullable=True)  # from where: the client address, or "cli"


# SigninAttempt.outcome (limit_requests stores a request kind there too); the audit says AuditOutcome.X
SIGNIN_FAILED, SIGNIN_SUCCEEDED, SIGNIN_THROTTLED = "failed", "succeeded", "throttled"
SIGNIN_FACTOR_FAILED = "factor_failed"  # the right password without its second factor
SIGNIN_FAILURES = (SIGNIN_FAILED, SIGNIN_FACTOR_FAILED)


class SigninAttempt(Base):
    """One password check (or one refused before it) from a source address: the sliding windows read these.

    ``subject`` is a keyed hash of the normalised e-mail tried, so a list attack is seen across accounts
    that do not exist without keeping the attacker's list in the clear.
    """

    __tablename__ = "signin_attempts"
    __table_args__ = (
        Index("ix_signin_attempts_source_at", "source", "at"),
        Index("ix_signin_attempts_place_at", "place", "at"),
        Index("ix_signin_attempts_outcome_at", "outcome", "at"),  # failures a minute, service-wide
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    place: Mapped[str | None] = mapped_column(String(64), nullable=True)  # its range: risk.signin_attack.place_of
    subject: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))  # failed | succeeded | throttled, or a request kind
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AddressBlock(Base):
    """A source address refused for a while: it failed across many accounts (a list attack) or an operator said so."""

    __tablename__ = "address_blocks"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    accounts_tried: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)  # attempts turned away while blocked


class RecoveryCode(Base):
    """A single-use recovery code of an account: only its keyed hash is kept."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PasswordReset(Base):
    """A password-reset token as sent to the registered address: kept hashed, single use, short-lived."""

    __tablename__ = "password_resets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuthSession(Base):
    """A signed-in session: its access tokens name it, its refresh tokens rotate within it."""

    __tablename__ = "auth_sessions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())  # absolute end, whatever the refreshes
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RefreshToken(Base):
    """One refresh token of a session, kept as a keyed hash; used once, then replaced (rotation)."""

    __tablename__ = "refresh_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CoreMeta(Base):
    """Facts about the database itself, by name: ``server_key_fingerprint`` names the key it was made with."""

    __tablename__ = "core_meta"
    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RiskDecision(Base):
    """What the risk engine said about one transaction when a rule fired (``payment_core.risk``).

    ``findings`` is JSON: each rule that fired, what it asked for, why in words, and the inputs it read,
    so ``possim admin explain`` can show the decision as it was made. Transactions no rule fired on
    have no row.
    """

    __tablename__ = "risk_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(20))  # payment | topup | signin | enrollment
    subject_id: Mapped[str] = mapped_column(String(60), index=True)
    account_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    verdict: Mapped[str] = mapped_column(String(20))  # a payment_core.risk.Verdict
    findings: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class AccountPlace(Base):
    """An address range (IPv4 /24, IPv6 /48) an account has signed in from: where its owner usually is.
    During a list attack, sign-ins from places new to the account are what is slowed down."""

    __tablename__ = "account_places"
    account_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    place: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class RiskAlert(Base):
    """A service-wide alert the risk engine raised (``signin.list_attack``): up until ``until`` or until an
    operator lifts it; ``signals`` is JSON, what fired it when it was raised and when last seen."""

    __tablename__ = "risk_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    signals: Mapped[str] = mapped_column(Text)
    lifted_by: Mapped[str | None] = mapped_column(String(60), nullable=True)


class ServiceSwitch(Base):
    """A kill switch an operator turned on (``payment_core.incident``): while its row exists, what it names
    (``topup-cash``, ``topup-card``, ``topup-bank``, ``signups``, ``enrollment``) is refused."""

    __tablename__ = "service_switches"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paused_by: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class SourceBlock(Base):
    """An operator's block of an address range (``kind`` ``cidr``, ``value`` the network) or of a country
    (``kind`` ``country``, ``value`` its ISO code): sign-in, enrollment, sign-up and reset from it are refused."""

    __tablename__ = "source_blocks"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_source_blocks_kind_value"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(64))
    blocked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    blocked_by: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class AdminKey(Base):
    """An operator's credential for the admin API (``payment_core.admin_keys``): only a keyed hash of its
    secret is kept; ``scope`` is ``read`` or ``operator``."""

    __tablename__ = "admin_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(60))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LinkedCard(Base):
    """A card an account linked (``payment_core.cards``): only a keyed hash of its number and the last four."""

    __tablename__ = "linked_cards"
    __table_args__ = (UniqueConstraint("account_id", "card_key", name="uq_linked_cards_account_card"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    card_key: Mapped[str] = mapped_column(String(64))
    last4: Mapped[str] = mapped_column(String(4))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CardCodeTry(Base):
    """One security code tried while linking a card: the card (keyed hash), who, from where, and whether it
    was right; the limits per card, device and address read these."""

    __tablename__ = "card_code_tries"
    __table_args__ = (
        Index("ix_card_code_tries_card_at", "card_key", "at"),
        Index("ix_card_code_tries_device_at", "device_id", "at"),
        Index("ix_card_code_tries_source_at", "source", "at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_key: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(Integer)
    device_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(64))
    right: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class QueuedWork(Base):
    """Work accepted with a 202 and done after the answer (``payment_core.queued_work``): committed with the
    answer, deleted in the transaction that does it. Never a plain secret: a sign-up carries its hash."""

    __tablename__ = "queued_work"
    __table_args__ = (Index("ix_queued_work_priority_id", "priority", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer)  # lower first: reset and security mail before sign-up mail
    payload: Mapped[str] = mapped_column(Text)  # JSON
    source: Mapped[str] = mapped_column(String(64))  # the client address of the request that queued it
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())  # later after a failed try
    attempts: Mapped[int] = mapped_column(Integer, default=0)
