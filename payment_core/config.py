"""Configuration of the core, and the server key that every stored secret is derived from."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from protocol import DEFAULT_SKEW_SECONDS, DEFAULT_TTL_SECONDS, TOLERANCE_SECONDS, Clock, system_clock

SERVER_KEY_ENV = "POSSIM_SERVER_KEY"
SERVER_KEY_BYTES = 32


@dataclass(frozen=True)
class Limits:
    """Bounds the core enforces on money and on guessing."""

    topup_max_yen: int = 100_000
    device_code_failures: int = 10
    terminal_code_failures: int = 20
    code_failure_window_seconds: int = 600
    confirm_above_yen: int = 10_000  # larger payments wait for the customer to approve them on the phone
    confirm_window_seconds: int = 35  # the register reverses after 30 s; unanswered ones expire after this


@dataclass(frozen=True)
class CoreConfig:
    db_url: str
    server_key: bytes = field(repr=False)
    db_schema: str | None = None
    code_ttl_seconds: int = DEFAULT_TTL_SECONDS
    clock_skew_seconds: int = DEFAULT_SKEW_SECONDS
    signature_tolerance_seconds: int = TOLERANCE_SECONDS
    limits: Limits = field(default_factory=Limits)
    clock: Clock = system_clock

    def __post_init__(self) -> None:
        if len(self.server_key) < SERVER_KEY_BYTES:
            raise ValueError("the server key must be at least 32 bytes")


def load_server_key(path: Path | None) -> bytes:
    """The key from ``$POSSIM_SERVER_KEY`` (hex) or from ``path``, created there (mode 0600) if missing."""
    from_env = os.environ.get(SERVER_KEY_ENV)
    if from_env:
        return bytes.fromhex(from_env)
    if path is None:
        raise ValueError(f"no server key: set {SERVER_KEY_ENV} or give a key file")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(SERVER_KEY_BYTES))
    return bytes.fromhex(path.read_text().strip())
