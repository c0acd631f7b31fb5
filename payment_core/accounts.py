"""Accounts: sign-up, the password check every sign-in goes through, password changes, status.

Sign-up never tells whether an address has an account (OWASP authentication cheat sheet): the request
is checked (address, phone, password policy), its password hashed, and answered "check your e-mail"; the
rest is queued with the answer and done after it (``payment_core.queued_work``), so the answer's time says
nothing either. A new address gets a
verification code; an unverified one gets its registration replaced and a new code (the mailbox's owner
wins over whoever typed it first) unless ``otp.may_send_email_code`` refuses (a minute between codes, a
daily cap): then nothing changes, so signing up again is no way round the code's guess limits; a verified
one gets "someone tried to sign up with your address" (a few times a day at most).
The TOTP key and the recovery codes are handed out when the mailed code is entered
(``otp.verify_email`` then :func:`second_factor_kit`).

:func:`check_password` costs one argon2 verification whether or not the account exists, and a locked
account (``throttle``) fails exactly like a wrong password.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from payment_core import audit, incident, notify, otp, outbox, queued_work, recovery, sessions, throttle
from payment_core.audit import AuditOutcome
from payment_core.config import PasswordPolicy
from payment_core.core import Core
from payment_core.keys import new_salt
from payment_core.ledger import open_book, wallet_book_name
from payment_core.models import Account, AuthSession
from payment_core.password_work import BoundedHasher
from payment_core.passwords import BreachedRanges, PasswordHasher, check_new_password, load_ranges
from payment_core.schemas import EMAIL_PATTERN
from payment_core.sources import current_source
from protocol import ErrorCode, ProtocolError

# An address is the published sign-up pattern (ASCII atoms @ letter-digit labels: no space, no control
# character, nothing a mail header or a terminal could trip on) within RFC 5321's lengths. Every address
# an account gets passes here, whoever adds it (the API, `possim admin account-add`, the domain's callers).
_EMAIL = re.compile(EMAIL_PATTERN)
EMAIL_MAX, EMAIL_LOCAL_MAX, EMAIL_LABEL_MAX = 254, 64, 63
DISPLAY_NAME_MAX = 100
# Text a display name may not hold: line breaks and control characters (a mail, a log line or a terminal
# would act on them), and the bidirectional overrides that make text read other than it is.
_NOT_IN_NAMES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_PHONE = re.compile(r"^\+?[0-9]{10,15}$")
SIGNUP_ANSWER = "Check your e-mail: the next step is in a message we sent to that address."


@dataclass(frozen=True)
class SignUpRequest:
    email: str
    phone: str
    password: str = field(repr=False)
    display_name: str | None


@dataclass(frozen=True)
class HashedSignUp:
    """A checked sign-up as it is queued: the password already hashed, never kept in plain text."""

    email: str
    phone: str
    password_hash: str = field(repr=False)
    display_name: str | None


@dataclass(frozen=True)
class SecondFactorKit:
    """Shown once, when the address is verified: the authenticator key and the recovery codes."""

    totp_secret: str = field(repr=False)
    totp_uri: str = field(repr=False)
    recovery_codes: list[str] = field(repr=False)


@lru_cache(maxsize=4)
def hasher_for(policy: PasswordPolicy) -> PasswordHasher:
    return PasswordHasher(policy)


@lru_cache(maxsize=4)
def _dummy_hash(policy: PasswordPolicy) -> str:
    # Verified against when the e-mail is unknown, so the answer takes as long as for a real account.
    return hasher_for(policy).hash("possim-no-such-account")


def hasher(core: Core, *, shed: bool = True) -> BoundedHasher:
    """The policy's hasher on the core's password budget: a caller waiting for its answer is refused (503)
    when the budget is full; work already answered (``shed=False``) waits for room."""
    return BoundedHasher(hasher_for(core.config.passwords), core.password_work, shed=shed)


@lru_cache(maxsize=4)
def _ranges(source: str) -> BreachedRanges:
    return load_ranges(source)


def breached_ranges(core: Core) -> BreachedRanges:
    return _ranges(core.config.breached_passwords)


def normalise_email(email: str) -> str:
    """The address, trimmed and in lower case, or 422 (see ``_EMAIL``)."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    fits = len(email) <= EMAIL_MAX and len(local) <= EMAIL_LOCAL_MAX
    if not (fits and _EMAIL.fullmatch(email) and all(len(label) <= EMAIL_LABEL_MAX for label in domain.split("."))):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "That is not an e-mail address.", param="email")
    return email


def clean_name(name: str | None, param: str, what: str) -> str | None:
    """A name a person typed (``what``: "A display name", "A phone's name"), trimmed (None when blank), or
    422 on ``param`` for one that is too long or holds a line break, a control character or a bidirectional
    override: these names go into mails and onto screens."""
    if name is None or not name.strip():
        return None
    name = name.strip()
    if len(name) > DISPLAY_NAME_MAX:
        raise ProtocolError(
            ErrorCode.VALIDATION_FAILED, f"{what} is at most {DISPLAY_NAME_MAX} characters.", param=param
        )
    if any(unicodedata.category(char) in _NOT_IN_NAMES or char in _BIDI_CONTROLS for char in name):
        message = f"{what} cannot hold line breaks or control characters."
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, message, param=param)
    return name


def clean_display_name(name: str | None) -> str | None:
    return clean_name(name, "display_name", "A display name")


def normalise_phone(phone: str) -> str:
    """Digits with an optional leading +, 10-15 digits; spaces, dots and hyphens are dropped."""
    compact = re.sub(r"[\s.\-()]", "", phone)
    if not _PHONE.match(compact):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, "That is not a phone number.", param="phone")
    return compact


def check_new(core: Core, password: str, email: str, phone: str | None) -> None:
    """The password policy (length, not breached, not the e-mail or phone): 422 with the reason."""
    check_new_password(core.config.passwords, breached_ranges(core), password, email, phone)


def check_sign_up(core: Core, email: str, phone: str, password: str, display_name: str | None) -> SignUpRequest:
    """Everything about a sign-up that can be told without looking at the accounts."""
    incident.require_running(core, incident.SIGNUPS)  # an operator's kill switch, before any other work
    email, phone, display_name = normalise_email(email), normalise_phone(phone), clean_display_name(display_name)
    check_new(core, password, email, phone)
    return SignUpRequest(email, phone, password, display_name)


def queue_sign_up(core: Core, request: SignUpRequest) -> None:
    """Hash a checked sign-up's password (a full password budget refuses with 503) and queue the rest
    (:func:`register`) to be done after the answer. The API serves sign-up as a password route
    (``api_unit.PASSWORD_PATHS``): no request-wide transaction, so the hash holds no database lock."""
    hashed = hasher(core).hash(request.password)
    queued_work.enqueue(
        core, "signup", asdict(HashedSignUp(request.email, request.phone, hashed, request.display_name))
    )


def register(core: Core, request: HashedSignUp) -> None:
    """Do a checked sign-up (after the answer was sent): see the module's docstring."""
    password_hash = request.password_hash
    now = core.now()
    try:
        with core.transaction() as session:
            found = _find(session, request.email)
            if found is None:
                _create(session, core, request, now, "signup")
            elif found.email_verified_at is None and not otp.may_send_email_code(session, found, now):
                # No new code may go out yet: the registration the last code was mailed for stands.
                audit.record(
                    session,
                    at=now,
                    actor="signup",
                    action="account.signup",
                    target=f"account:{found.id}",
                    result=AuditOutcome.THROTTLED,
                )
            elif found.email_verified_at is None:
                found.password_hash, found.phone, found.totp_salt = password_hash, request.phone, new_salt()
                found.display_name = request.display_name or found.display_name
                found.totp_last_step, found.password_changed_at = None, now
                audit.record(
                    session,
                    at=now,
                    actor="signup",
                    action="account.signup",
                    target=f"account:{found.id}",
                    result=AuditOutcome.REPLACED_UNVERIFIED,
                )
                otp.send_email_code(session, core, found, now)
            else:
                audit.record(
                    session,
                    at=now,
                    actor="signup",
                    action="account.signup",
                    target=f"account:{found.id}",
                    result=AuditOutcome.REFUSED_EXISTS,
                )
                if _notices_today(session, found, now) > otp.EMAIL_CODES_PER_DAY:
                    return  # told often enough today: no mail-bombing an address through the sign-up form
                body = (
                    "Someone tried to open a possim wallet with this address, which already has one.\n"
                    "If it was you, sign in instead; if you forgot your password, reset it from the wallet.\n"
                    "If it was not you, you need not do anything.\n"
                )
                outbox.send(session, outbox.EMAIL, found.email, "Sign-up attempt with your address", body, now)
    except IntegrityError:  # a concurrent sign-up for the same address won: it has mailed its code
        return


def _notices_today(session: Session, account: Account, now: datetime) -> int:
    """Sign-ups refused today because the address has an account (this one included)."""
    return otp.events_today(session, account.id, "account.signup", AuditOutcome.REFUSED_EXISTS, now)


def _find(session: Session, email: str) -> Account | None:
    return session.scalars(select(Account).where(Account.email == email).with_for_update()).one_or_none()


def _create(session: Session, core: Core, request: HashedSignUp, now: datetime, actor: str) -> Account:
    account = Account(
        email=request.email,
        display_name=request.display_name or request.email.split("@")[0],
        password_hash=request.password_hash,
        status="active",
        created_at=now,
        phone=request.phone or None,
        totp_salt=new_salt(),
        totp_failures=0,
        signin_failures=0,
        password_changed_at=now,
    )
    session.add(account)
    session.flush()
    open_book(session, "wallet", wallet_book_name(account.id), owner_id=account.id)
    audit.record(
        session,
        at=now,
        actor=actor,
        action="account.create",
        target=f"account:{account.id}",
        result=AuditOutcome.SUCCEEDED,
    )
    otp.send_email_code(session, core, account, now)
    return account


def sign_up(core: Core, email: str, phone: str, password: str, display_name: str | None = None) -> None:
    """Check and register at once (the API queues :func:`register` instead)."""
    checked = check_sign_up(core, email, phone, password, display_name)
    register(core, HashedSignUp(checked.email, checked.phone, hasher(core).hash(password), checked.display_name))


def create_account(
    core: Core, email: str, password: str, display_name: str | None = None, actor: str = "signup"
) -> Account:
    """An account made by an operator (``possim admin account-add``): same policy, no phone; it still has to
    verify its address before a device can enroll."""
    email, display_name = normalise_email(email), clean_display_name(display_name)
    check_new(core, password, email, None)
    request = HashedSignUp(email, "", hasher(core, shed=False).hash(password), display_name)
    try:
        with core.transaction() as session:
            return _create(session, core, request, core.now(), actor)
    except IntegrityError:
        raise ProtocolError(ErrorCode.ACCOUNT_EXISTS, param="email") from None


def second_factor_kit(core: Core, account: Account) -> SecondFactorKit:
    """The TOTP key and a fresh set of recovery codes, for an address verified just now."""
    with core.transaction() as session:
        codes = recovery.issue(session, core, account.id, core.now())
    secret = otp.account_totp_secret(core, account)
    return SecondFactorKit(secret, otp.provisioning_uri(secret, account.email), codes)


@dataclass(frozen=True)
class PasswordCheck:
    account_id: int | None  # the account the e-mail names, if any (to count a failure against it)
    account: Account | None  # set only when the password is right and sign-in is not locked


def check_password(core: Core, email: str, password: str) -> PasswordCheck:
    """Check ``password`` for the account ``email`` names, after the same argon2 work whether or not it
    exists; a locked account fails like a wrong password. A hash made with weaker parameters is upgraded."""
    # Made (once per process) before the lookup, so the first check costs the same for either kind of address.
    dummy = _dummy_hash(core.config.passwords)
    with core.transaction() as session:
        account = session.scalars(select(Account).where(Account.email == email.strip().lower())).one_or_none()
    policy_hasher = hasher(core)
    stored = account.password_hash if account else dummy
    matches = policy_hasher.verify(stored, password)
    if account is None or not matches or throttle.account_locked(account, core.now()):
        return PasswordCheck(account.id if account else None, None)
    if policy_hasher.needs_rehash(account.password_hash):
        with core.transaction() as session:
            fresh = session.get(Account, account.id, with_for_update=True)
            if fresh is not None and fresh.password_hash == account.password_hash:
                fresh.password_hash = policy_hasher.hash(password)
    return PasswordCheck(account.id, account)


def change_password(core: Core, auth: AuthSession, current: str, new: str, sign_out_other_devices: bool = True) -> int:
    """A signed-in user's new password: the current one first; every other session ends; the owner is told.

    With ``sign_out_other_devices`` (the default) every other device of the account is revoked too: a
    phone that a thief enrolled with the old password stops minting payment codes, and the owner's other
    phones sign in again as new ones (password and second factor). The device of ``auth`` stays. Returns
    how many devices were revoked."""
    with core.transaction() as session:
        account = session.get(Account, auth.account_id)
    if account is None:
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID, param="current_password")
    source = current_source.get()
    throttle.admit(core, source, account.email)  # a stolen session must not become a password oracle
    if not hasher(core).verify(account.password_hash, current):
        throttle.settle(core, source, account.email, account.id, False, "password.change_attempt")
        raise ProtocolError(ErrorCode.CREDENTIALS_INVALID, param="current_password")
    check_new(core, new, account.email, account.phone)
    new_hash = hasher(core).hash(new)
    now = core.now()
    with core.transaction() as session:
        account = session.get(Account, auth.account_id, with_for_update=True)
        assert account is not None
        account.password_hash, account.password_changed_at = new_hash, now
        actor = f"account:{account.id}"
        revoked = 0
        if sign_out_other_devices:
            revoked = sessions.revoke_devices(session, account.id, actor, now, keep=auth.device_id)
        ended = sessions.revoke_all(session, account.id, now, "password_changed", keep=auth.id)
        audit.record(
            session,
            at=now,
            actor=actor,
            action="password.change",
            target=actor,
            result=AuditOutcome.SUCCEEDED,
            sign_out_other_devices=sign_out_other_devices,
            devices_revoked=revoked,
            sessions_ended=ended,
        )
        password_changed_notice(session, account, now, revoked if sign_out_other_devices else None)
    return revoked


def password_changed_notice(
    session: Session, account: Account, now: datetime, other_devices_revoked: int | None = None
) -> None:
    """Tell the owner, on the wallet and by mail; ``other_devices_revoked``: how many other devices a
    change signed out (``None``: the change kept them)."""
    signed_out = ""
    if other_devices_revoked is not None:
        plural = "" if other_devices_revoked == 1 else "s"
        signed_out = f" {other_devices_revoked} other device{plural} signed out."
    notify.notify(session, account.id, notify.PASSWORD_CHANGED, "Your password was changed." + signed_out, now)
    body = (
        f"The password of your possim wallet was changed at {now:%Y-%m-%d %H:%M} UTC.{signed_out}\n"
        "If it was not you, reset it now from the wallet and sign out everywhere.\n"
    )
    outbox.send(session, outbox.EMAIL, account.email, "Your password was changed", body, now)


def set_account_status(core: Core, account_id: int, status: str, actor: str) -> Account:
    now = core.now()
    with core.transaction() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, param="account_id")
        account.status = status
        audit.record(
            session,
            at=now,
            actor=actor,
            action=f"account.{status}",
            target=f"account:{account_id}",
            result=AuditOutcome.SUCCEEDED,
        )
        return account
