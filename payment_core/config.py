"""Configuration of the core, and the server key that every stored secret is derived from."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from payment_core.risk.settings import RiskSettings, load_settings
from protocol import DEFAULT_SKEW_SECONDS, DEFAULT_TTL_SECONDS, TOLERANCE_SECONDS, Clock, system_clock

SERVER_KEY_ENV = "POSSIM_SERVER_KEY"
SERVER_KEY_BYTES = 32


PASSWORD_NICENESS = 15  # payment_core.password_work


@dataclass(frozen=True)
class Limits:
    """Bounds the core enforces on money and on guessing."""

    topup_min_yen: int = 1_000  # so filling a wallet's daily sum with seen codes costs the whole sum in cash
    topup_max_yen: int = 100_000  # 7pay's own cap per top-up
    topup_daily_count: int = 3  # the owner's card and bank top-ups in any 24 hours (7pay: 3 a day); not cash
    topup_daily_sum_yen: int = 200_000  # yen topped up per account in any 24 hours
    # A device enrolled within the last ``new_device_hours`` tops up less: the 7pay pattern was a
    # stolen account, a fresh phone, a top-up and spending on the same day.
    new_device_hours: int = 72
    new_device_topup_max_yen: int = 10_000
    new_device_daily_sum_yen: int = 20_000
    max_devices: int = 5  # active devices per account; one more must wait for a revoke
    # Guessing at payment codes (payment_core.codes): throttled by its source, the register and its store,
    # in any ``code_failure_window_seconds``; a device's numeric codes (not its QR codes) are refused after
    # ``device_numeric_failures`` bad codes named it in ``device_numeric_window_seconds``, from anywhere.
    terminal_code_failures: int = 20
    store_code_failures: int = 40
    code_failure_window_seconds: int = 600
    device_numeric_failures: int = 100  # 100 guesses a day at 1 in 10^7: about 1 in 270 over a year
    device_numeric_window_seconds: int = 86_400
    # Linking a card (payment_core.cards): wrong security codes allowed per card (tried from any account),
    # per device and per address in any ``card_code_window_seconds``; 0 turns one off (the 7pay replay).
    card_code_failures_per_card: int = 3
    card_code_failures_per_device: int = 5
    card_code_failures_per_address: int = 10
    card_code_window_seconds: int = 86_400
    card_wrong_codes_remembered_days: int = 30  # wrong codes on a card this recent call for the issuer's check
    confirm_above_yen: int = 10_000  # larger payments wait for the customer to approve them on the phone
    confirm_window_seconds: int = 35  # the register reverses after 30 s; unanswered ones expire after this


@dataclass(frozen=True)
class PasswordPolicy:
    """How account passwords are hashed (argon2id) and which new passwords are accepted.

    The argon2id parameters are RFC 9106's second recommended option (section 4, for memory-constrained
    servers): t=3 passes over m=64 MiB with p=4 lanes, a 128-bit salt and a 256-bit tag. It is well above
    OWASP's Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1) and is argon2-cffi's own default,
    so hashes made before this policy was written need no rehash. Raising any of these makes
    ``accounts.check_password`` rehash a password at its next successful sign-in.

    Lengths follow NIST SP 800-63B section 5.1.1.2: at least 12 characters (above the 8 it requires,
    as PCI DSS v4 8.3.6 asks for 12), and up to 1024 so a passphrase is never cut, while bounding the
    work one request can ask of argon2.
    """

    time_cost: int = 3  # passes over memory
    memory_cost: int = 65_536  # KiB (64 MiB)
    parallelism: int = 4  # lanes
    hash_len: int = 32  # bytes of tag
    salt_len: int = 16  # bytes of random salt per hash
    min_length: int = 12
    max_length: int = 1024
    # "argon2id", or "salted-sha256": one SHA-256 over a random salt and the password, as many 2019 systems
    # stored them. Only `possim attack --defenses 7pay` chooses it, to show what a fast hash lets a list
    # attack do; a core on argon2id never accepts such a hash (passwords.PasswordHasher).
    scheme: str = "argon2id"


@dataclass(frozen=True)
class Throttling:
    """Failed sign-ins, after the OWASP credential-stuffing cheat sheet and PCI DSS v4 8.3.4.

    Per account: ``account_max_failures`` failures in a row lock password sign-in for
    ``account_lock_minutes`` or until a password reset (8.3.4: at most 10, at least 30 minutes).
    Per source address (IPv6 counted per /64): failures in a sliding window of ``window_seconds``;
    beyond ``free_failures`` each next try waits 2^(n - free) seconds after the last failure, up to
    ``backoff_max_seconds``. An address that fails across ``list_attack_accounts`` different e-mail
    addresses within the window is blocked for ``list_attack_block_minutes`` and recorded as a list
    attack (audit ``signin.list_attack``).
    """

    account_max_failures: int = 10
    account_lock_minutes: int = 30
    window_seconds: int = 900
    free_failures: int = 5
    backoff_max_seconds: int = 900
    enabled: bool = True  # False only for `possim attack --defenses 7pay`: no backoff, no blocks, no locks
    list_attack_accounts: int = 20
    list_attack_block_minutes: int = 60
    reset_requests_per_window: int = 10  # password-reset and sign-up requests per address per window
    reset_mails_per_account_hour: int = 3  # reset mails an account gets an hour, whoever asks (resets.py)


@dataclass(frozen=True)
class SessionPolicy:
    """Signed-in sessions: short access tokens, rotating refresh tokens, and the account's one-time secrets."""

    access_token_seconds: int = 300
    refresh_token_days: int = 14  # a refresh token unused this long is dead; each use gives a new one
    session_max_days: int = 60  # a session ends after this however often it is refreshed
    reset_token_minutes: int = 15
    recovery_codes: int = 10


@dataclass(frozen=True)
class Retention:
    """How long the rows kept only against replays and guessing stay once they no longer decide anything
    (``payment_core.retention``; ``possim admin prune``, and every ``prune_every_minutes`` in ``possim core
    serve``). Each is kept at least as long as the window that reads it, whatever is set here. Money (journals,
    payments, top-ups, refunds: a payment's order id is its idempotency key for ever), the audit trail and
    the risk decisions are never pruned."""

    used_codes_hours: int = 24  # a code is refused as expired after its life and the clock skew anyway
    code_failures_hours: int = 24  # the guessing windows (code_failure_window_seconds, device_numeric_...)
    ended_sessions_days: int = 7  # a session that expired or was revoked, with its refresh tokens
    spent_resets_days: int = 1  # a reset code after it expired or was used
    mail_days: int = 30  # the simulated mailbox (outbox)
    ended_blocks_days: int = 30  # a throttle block or range hold after it ended
    prune_every_minutes: int = 10
    batch: int = 2_000  # rows deleted a transaction, so the job never holds the writer long


@dataclass(frozen=True)
class Defences:
    """Doors 7pay left open, each shut by default. Only ``possim attack --defenses 7pay`` opens them (with
    the throttle and the risk rules off, ``possim.attack.defences``), to replay what they cost; nothing
    else may, and a core that runs with one open says so when it starts."""

    second_factor_for_new_phones: bool = True  # a new phone needs the password and a TOTP or recovery code
    code_for_owner_topups: bool = True  # a card or bank top-up needs a fresh TOTP code
    # a card that had wrong security codes tried on it lately is linked only after its holder confirms at the
    # issuer (3-D Secure); the holder refuses a prompt they did not start (payment_core.cards)
    issuer_check_after_wrong_codes: bool = True
    # a reset code is mailed only to the account's own address; 7pay's form took a second address to send it
    # to, so whoever knew the e-mail (7pay also asked for a birth date and a phone number, which leaked lists
    # carry) had the code mailed to themselves (payment_core.resets)
    reset_mail_to_own_address_only: bool = True


@dataclass(frozen=True)
class CoreConfig:
    db_url: str
    server_key: bytes = field(repr=False)
    db_schema: str | None = None
    code_ttl_seconds: int = DEFAULT_TTL_SECONDS
    clock_skew_seconds: int = DEFAULT_SKEW_SECONDS
    signature_tolerance_seconds: int = TOLERANCE_SECONDS
    limits: Limits = field(default_factory=Limits)
    passwords: PasswordPolicy = field(default_factory=PasswordPolicy)
    throttling: Throttling = field(default_factory=Throttling)
    defences: Defences = field(default_factory=Defences)
    sessions: SessionPolicy = field(default_factory=SessionPolicy)
    retention: Retention = field(default_factory=Retention)
    # The risk rules' thresholds and actions (payment_core/risk/rules.toml, or an operator's file over it)
    risk: RiskSettings = field(default_factory=load_settings)
    # Where new passwords are looked up: "builtin" (fixtures/passwords), a range file or directory, or a
    # k-anonymity range API URL (payment_core.passwords.load_ranges).
    breached_passwords: str = "builtin"
    # Who is told when the risk engine raises a service-wide alert (a sign-in list attack)
    operator_email: str = "security@possim.example"
    # Peers whose X-Forwarded-For is believed (the web wallet's proxy); anyone else is taken at its address.
    trusted_proxies: tuple[str, ...] = ()
    # The secret a trusted proxy sends in X-Possim-Proxy-Secret (payment_core.sources): without it (or with
    # none set) X-Forwarded-For is ignored, so another local process cannot pose as the proxy.
    proxy_secret: str | None = field(default=None, repr=False)
    # Password hashing's budget (payment_core.password_work): hashes at once, and how many more may wait
    # before a sign-in is refused with 503 and Retry-After. By default one core is left for the registers.
    password_workers: int = field(default_factory=lambda: max(1, (os.cpu_count() or 2) - 1))
    password_queue: int = 16
    # Work answered with a 202 and not yet done (payment_core.queued_work): rows that may wait in each
    # priority before such a request is refused with 503 and Retry-After.
    queued_work_limit: int = 5000
    # Whether this process does queued work (``possim core serve --no-queued-work``: it only answers, and
    # another process does the work; an explicit ``Core.drain()`` still does it).
    queued_work_runner: bool = True
    # How much lower the hashing threads' scheduling priority is than the registers' (0-19, Linux)
    password_niceness: int = PASSWORD_NICENESS
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if len(self.server_key) < SERVER_KEY_BYTES:
            raise ValueError("the server key must be at least 32 bytes")


KEY_FINGERPRINT_LABEL = b"possim/key-fingerprint/v1"
KEY_FINGERPRINT_BYTES = 8


def key_fingerprint(server_key: bytes) -> str:
    """A short public name for a server key: the first 8 bytes of HMAC-SHA256(key, label), in hex.

    It tells two keys apart (a database remembers the fingerprint of the key it was made with) and
    gives nothing of the key away: it is a keyed hash with the key as the key, cut to 64 bits.
    """
    return hmac.new(server_key, KEY_FINGERPRINT_LABEL, hashlib.sha256).digest()[:KEY_FINGERPRINT_BYTES].hex()


def server_key_from_env() -> bytes | None:
    """The key in ``$POSSIM_SERVER_KEY`` (hex), if it is set."""
    from_env = os.environ.get(SERVER_KEY_ENV)
    return bytes.fromhex(from_env) if from_env else None


def read_server_key(path: Path) -> bytes | None:
    """The key in the file ``path``, or None if there is no such file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return bytes.fromhex(text.strip())


def create_server_key(path: Path) -> bytes:
    """A new random key written to ``path`` (mode 0600); never over an existing file (FileExistsError).

    The key is written to a private temporary file first and linked into place, so no other process
    ever reads a half-written key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(SERVER_KEY_BYTES)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex())
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    finally:
        draft.unlink()
    return key


def load_server_key(path: Path | None) -> bytes:
    """The key from ``$POSSIM_SERVER_KEY`` (hex) or from ``path``, created there (mode 0600) if missing.

    The ``possim`` commands do not call this: they create a key only for a database that has none
    (``possim.runtime``), and say so.
    """
    from_env = server_key_from_env()
    if from_env is not None:
        return from_env
    if path is None:
        raise ValueError(f"no server key: set {SERVER_KEY_ENV} or give a key file")
    existing = read_server_key(path)
    return existing if existing is not None else create_server_key(path)
