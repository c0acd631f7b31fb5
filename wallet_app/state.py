"""What a wallet keeps on the phone: its device number and secret and its session's refresh token, in a
file only its owner can read."""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path


class WalletStateError(Exception):
    """The wallet file is missing, unreadable or readable by others."""


@dataclass(frozen=True)
class WalletState:
    core_url: str
    email: str
    account_id: int
    device_id: int
    secret: bytes = field(repr=False)
    wallet_name: str = "possim wallet"
    refresh_token: str | None = field(default=None, repr=False)  # the session's; rotates on each use

    @property
    def key_id(self) -> str:
        return f"dev_{self.device_id}"

    def to_json(self) -> str:
        data = {
            "core_url": self.core_url,
            "email": self.email,
            "account_id": self.account_id,
            "device_id": self.device_id,
            "device_secret": base64.urlsafe_b64encode(self.secret).decode(),
            "wallet_name": self.wallet_name,
            "refresh_token": self.refresh_token,
        }
        return json.dumps(data, indent=2)


def decode_secret(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def save_state(state: WalletState, path: Path) -> None:
    """Write atomically with mode 0600 (created that way, never widened then narrowed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(state.to_json())
    os.replace(temporary, path)


def load_state(path: Path) -> WalletState:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise WalletStateError(f"{path} is readable by others; run: chmod 600 {path}")
        data = json.loads(path.read_text())
        return WalletState(
            core_url=str(data["core_url"]),
            email=str(data["email"]),
            account_id=int(data["account_id"]),
            device_id=int(data["device_id"]),
            secret=decode_secret(str(data["device_secret"])),
            wallet_name=str(data.get("wallet_name", "possim wallet")),
            refresh_token=str(data["refresh_token"]) if data.get("refresh_token") else None,
        )
    except FileNotFoundError:
        raise WalletStateError(f"no wallet at {path}; enroll this device first") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WalletStateError(f"cannot read the wallet at {path}: {error}") from None
