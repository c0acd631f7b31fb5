"""What the register says to the clerk, in Japanese and English, for each answer of the core."""

from __future__ import annotations

from terminal.client import PaymentOutcome

DECLINE_REASONS: dict[str, str] = {
    "insufficient_funds": "残高不足 — Insufficient balance. Ask for another tender.",
    "code_expired": "有効期限切れ — The code has expired. Ask the customer to refresh it.",
    "code_not_yet_valid": "時刻エラー — The code is dated in the future; the phone's clock is wrong.",
    "code_already_used": "使用済み — This code was already used. Ask for a new code.",
    "account_frozen": "利用停止中 — The account is frozen. Ask for another tender.",
    "risk_declined": "セキュリティ確認 — Stopped by a security check. Ask for another tender.",
    "limit_exceeded": "上限超過 — The account's limit is reached.",
    "code_forged": "無効なコード — This is not a valid payment code.",
    "device_unknown": "無効なコード — This is not a valid payment code.",
    "device_revoked": "無効な端末 — The phone that made this code was revoked.",
    "code_guessing_throttled": "一時停止 — Too many invalid codes; payments are paused for a while.",
    "customer_declined": "お客様が拒否 — The customer declined on the phone.",
    "confirmation_expired": "確認タイムアウト — The customer did not confirm in time.",
    "code_checksum_failed": "読取エラー — The code was misread. Scan it again.",
    "code_malformed": "読取エラー — That is not a payment code.",
    "code_unknown_issuer": "対象外 — This code is not from a possim wallet.",
    "service_paused": "一時停止中 — Paused for a while for security. The customer's balance is safe; try later.",
    "idempotency_conflict": "注文番号の重複 — This order was already sent with another code.",
}

UNREACHABLE = (
    "決済センターに接続できません — The payment service cannot be reached. Do not hand over the goods. "
    "F5 retries with the same order number (it can never charge twice)."
)


UNAVAILABLE = (
    "決済サービス停止中 — The payment service answered 503: it is unavailable (its database is down or busy). "
    "The sale is kept as it is and nothing is recorded as paid. Do not hand over the goods. "
)


def retry_after_seconds(outcome: PaymentOutcome) -> int | None:
    """The seconds the core asked to wait (``retry_after`` of its 503 answer's error), if it said."""
    error = (outcome.data or {}).get("error")
    seconds = error.get("retry_after") if isinstance(error, dict) else None
    return seconds if isinstance(seconds, int) and not isinstance(seconds, bool) and 0 < seconds <= 3600 else None


def service_unavailable(outcome: PaymentOutcome) -> str | None:
    """What the clerk reads when the core answered 503 ``service_unavailable`` (its database is down) and the
    payment's fate stays open: when to try again, and that F5 is safe; None for any other outcome."""
    if outcome.http_status != 503 or outcome.error_code != "service_unavailable":
        return None
    seconds = retry_after_seconds(outcome)
    when = f"in {seconds} s" if seconds is not None else "in a moment"
    return f"{UNAVAILABLE}Try again {when}: F5 sends it again with the same order number (it can never charge twice)."


# Refusals for time: the client's words name whose clock is off and by how much (terminal.client.clerk_message).
CLOCK_HEADINGS = {"code_not_yet_valid": "時刻エラー", "code_expired": "有効期限切れ", "timestamp_stale": "時刻エラー"}


def decline_reason(code: str | None, fallback: str = "") -> str:
    """The clerk's wording for a decline or refusal code; the core's message when we have none."""
    if code is not None and code in CLOCK_HEADINGS and fallback:
        return f"{CLOCK_HEADINGS[code]} — {fallback}"
    if code and code in DECLINE_REASONS:
        return DECLINE_REASONS[code]
    return fallback or f"Declined ({code or 'no reason given'})."
