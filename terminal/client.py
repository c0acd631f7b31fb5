"""The register's payment client: signed requests, retries on the same order id, query then reverse.

Every request is signed (``protocol.http_auth.SigningAuth`` on the httpx client, so the URL sent is the
URL signed) with a fresh nonce per attempt. A payment whose answer is lost (network error, timeout, 5xx, or a
401 ``nonce_replayed``: the network delivered the request twice and this is the answer to the other copy)
is retried with the same order id, which is the core's idempotency key, so a retry can never charge twice
(every request of this client is keyed so: order, refund and top-up ids). If the outcome stays unknown
the client asks for the order; if the core cannot say, the client reverses the order, so a late copy of
the request cannot charge; if even that fails the outcome says ``unknown``, honestly.

What the core is bound to refuse never leaves the register: a misread code (its check digit fails), a
code from another issuer, an amount that is not whole yen, an id the core's pattern refuses. Nothing here
raises to the caller: every path returns a :class:`PaymentOutcome`. Errors are read with
``ProtocolError.from_envelope``, the decoder every client shares; a refusal for time is worded for the
clerk by :func:`clerk_message` (whose clock is wrong, by how much, what to do).
"""

from __future__ import annotations

import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from protocol import (
    Clock,
    ErrorCode,
    PaymentStatus,
    ProtocolError,
    encode_body,
    parse_code,
    require_amount,
    system_clock,
)
from protocol.errors import ClockSkew, ahead_or_behind, describe_seconds
from protocol.http_auth import SigningAuth
from terminal.receipt import store_time

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
FINAL_STATUSES = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.DECLINED, PaymentStatus.REVERSED, PaymentStatus.REFUNDED}
)
AWAITING_CUSTOMER = PaymentStatus.AWAITING_CUSTOMER  # the phone must approve first; poll, then reverse after 30 s
KNOWN_STATUSES = FINAL_STATUSES | {AWAITING_CUSTOMER}
# The outcome of a request that decided nothing: refused (locally or by the core), or no answer to say.
ERROR = "error"
UNKNOWN = "unknown"
# The core's pattern for order, refund and top-up ids (payment_core.schemas): URL-safe as it stands.
ID_PATTERN = re.compile(r"[A-Za-z0-9_\-:.]{1,64}")
# The core's pattern for a sale's categories (``categories`` of ``POST /v1/payments``), and how many it takes.
CATEGORY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_CATEGORIES = 20
# The words the core's risk rules read (``high_risk_goods``), and what a catalog may call them instead.
RISK_CATEGORIES = ("tobacco", "gift_card")
CATEGORY_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        (
            "tobacco",
            "tobaccos",
            "cigarette",
            "cigarettes",
            "cigar",
            "cigars",
            "heated_tobacco",
            "たばこ",
            "タバコ",
            "煙草",
        ),
        "tobacco",
    ),
    **dict.fromkeys(
        (
            "gift_card",
            "gift_cards",
            "giftcard",
            "giftcards",
            "prepaid",
            "prepaid_card",
            "prepaid_cards",
            "gift_certificate",
            "ギフトカード",
            "プリペイドカード",
            "商品券",
        ),
        "gift_card",
    ),
}
_NOT_WORD = re.compile(r"[^a-z0-9]+")
# What sending may raise instead of giving an answer: the core did not answer.
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx.StreamError, httpx.InvalidURL, OSError)
CONFIRM_TIMEOUT_SECONDS = 30.0
CONFIRM_POLL_SECONDS = 2.5
UNKNOWN_MESSAGE = (
    "The payment service could not confirm or reverse this payment. Do not hand over the goods; "
    "reverse the order once the service is back."
)
_MESSAGES = {
    PaymentStatus.SUCCEEDED: "Approved.",
    PaymentStatus.REVERSED: "The order is reversed: nothing is charged.",
    PaymentStatus.REFUNDED: "Refunded.",
    PaymentStatus.DECLINED: "Declined.",
    AWAITING_CUSTOMER: "Waiting for the customer to approve on the phone.",
}


@dataclass(frozen=True)
class PaymentOutcome:
    """What the register tells the clerk.

    ``status`` is a final state (``succeeded``, ``declined``, ``reversed``, ``refunded``), ``awaiting_customer``
    (the phone must approve it: see :meth:`PaymentClient.wait_for_customer`), ``error`` (the
    request was refused, locally or by the core, and nothing happened) or ``unknown`` (the core could not
    be reached to say; the order may need a reverse). ``order_id`` is the key the request was made under:
    the order id, or the refund id or top-up id for those requests. ``attempts`` counts every HTTP
    request sent for this outcome, retries, query and reverse included; ``data`` is the core's answer.
    """

    status: str
    order_id: str
    payment_id: str | None = None
    amount: int | None = None
    balance_after: int | None = None
    decline_code: str | None = None
    error_code: str | None = None
    message: str = ""
    http_status: int | None = None
    attempts: int = 0
    data: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def final(self) -> bool:
        """True when the sale (or refund, or top-up) is in a final state and needs nothing more."""
        return self.status in FINAL_STATUSES


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: no answer at all (network error, timeout)
    data: dict[str, Any]
    attempts: int
    failure: str = ""  # the transport error's name when there was no answer

    @property
    def paused(self) -> bool:
        """A 503 ``service_paused``: an operator stopped this act (a kill switch); retrying in a moment will
        not change it, so the register says so at once instead of retrying into an unknown outcome."""
        error = self.data.get("error")
        return self.status == 503 and isinstance(error, dict) and error.get("code") == ErrorCode.SERVICE_PAUSED.value

    @property
    def replayed(self) -> bool:
        """A 401 ``nonce_replayed``: this very request (every attempt has a nonce of its own) had reached the core
        before, so a copy of it was decided and this answer says nothing of how; a network that delivered it
        twice is the only way here. Asking again with a fresh nonce, under the same key, gets the copy's result."""
        error = self.data.get("error")
        return self.status == 401 and isinstance(error, dict) and error.get("code") == ErrorCode.NONCE_REPLAYED.value

    @property
    def decided(self) -> bool:
        """The core answered with something other than a server error (or said it is paused) about this request:
        repeating will not change it."""
        return self.status is not None and not self.replayed and (self.status not in RETRYABLE_STATUSES or self.paused)


class PaymentClient:
    """The register's link to the core. ``retries`` is how many times a request is repeated after its
    first attempt fails for want of an answer; the waits are ``backoff``, twice that, four times, ...
    """

    def __init__(
        self,
        base_url: str,
        terminal_id: str,
        terminal_secret: bytes,
        *,
        clock: Clock = system_clock,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.terminal_id = terminal_id
        self._retries = max(0, retries)
        self._backoff = max(0.0, backoff)
        self._sleep = sleep
        auth = SigningAuth(terminal_id, terminal_secret, clock)
        self._http = httpx.Client(base_url=base_url.rstrip("/"), auth=auth, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PaymentClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @staticmethod
    def new_order_id(prefix: str = "ord") -> str:
        return f"{prefix}-{secrets.token_hex(8)}"

    # -- payments ----------------------------------------------------------------------------------

    def pay(
        self,
        order_id: str,
        amount: int,
        code: str,
        description: str | None = None,
        categories: Iterable[str] = (),
    ) -> PaymentOutcome:
        """Charge ``amount`` yen for ``order_id`` with a scanned or typed wallet code. ``categories`` are the
        catalog categories of the goods (sent as :func:`api_categories` makes them: the risk rules read them)."""
        try:
            _require_id(order_id, "order_id")
            require_amount(amount)
            parsed = parse_code(code)  # a misread is caught here and never counts as a guess at the core
        except ProtocolError as error:
            return _refused(order_id, error)
        body: dict[str, Any] = {"order_id": order_id, "amount": amount, "code": parsed.text}
        if description is not None:
            body["description"] = description
        sent = api_categories(categories)
        if sent:
            body["categories"] = list(sent)
        answer = self._call("POST", "/v1/payments", body)
        outcome = _outcome(order_id, answer)
        if outcome.status != UNKNOWN:
            return outcome
        return self._settle(order_id, answer.attempts)

    def _settle(self, order_id: str, attempts: int) -> PaymentOutcome:
        """The charge's fate is unknown: ask the core, and if it cannot say, close the order."""
        looked_up = self.query(order_id)
        attempts += looked_up.attempts
        if looked_up.final or looked_up.status == AWAITING_CUSTOMER:  # the phone is asked: the caller waits
            return replace(looked_up, attempts=attempts)
        reversed_ = self.reverse(order_id)  # also closes an order the core never saw (404 above)
        attempts += reversed_.attempts
        if reversed_.final:
            return replace(reversed_, attempts=attempts)
        return PaymentOutcome(
            UNKNOWN,
            order_id,
            error_code=reversed_.error_code or ErrorCode.SERVICE_UNAVAILABLE.value,
            message=UNKNOWN_MESSAGE,
            http_status=reversed_.http_status,
            attempts=attempts,
            data=reversed_.data,
        )

    def wait_for_customer(
        self,
        order_id: str,
        *,
        timeout: float = CONFIRM_TIMEOUT_SECONDS,
        poll: float = CONFIRM_POLL_SECONDS,
        on_tick: Callable[[float], bool] | None = None,
    ) -> PaymentOutcome:
        """Poll an ``awaiting_customer`` order every ``poll`` seconds; after ``timeout`` (or when ``on_tick``,
        given the seconds left, returns True: the clerk cancelled) reverse it. A reverse that races the
        customer's late approval refunds it in full at the core, so the result is always final or ``unknown``.
        """
        polls = max(1, int(timeout // poll))
        attempts, cancelled = 0, False
        for index in range(polls):
            if on_tick is not None and on_tick(timeout - index * poll):
                cancelled = True
                break
            self._sleep(poll)
            looked_up = self.query(order_id)
            attempts += looked_up.attempts
            if looked_up.final:
                return replace(looked_up, attempts=attempts)
        reversed_ = self.reverse(order_id)
        attempts += reversed_.attempts
        if reversed_.final:
            waited = "The payment was cancelled" if cancelled else "The customer did not approve in time"
            message = f"{waited}; the order is reversed and nothing is charged."
            if reversed_.status == PaymentStatus.REVERSED and (reversed_.data or {}).get("amount_refunded"):
                message = "Approved too late: the order is reversed and the amount refunded to the wallet."
            return replace(reversed_, attempts=attempts, message=message)
        return self._settle(order_id, attempts)

    def query(self, order_id: str) -> PaymentOutcome:
        """The payment made for ``order_id``, in whatever state it is (``error``/``resource_missing`` if none)."""
        try:
            _require_id(order_id, "order_id")
        except ProtocolError as error:
            return _refused(order_id, error)
        return _outcome(order_id, self._call("GET", f"/v1/orders/{order_id}"))

    def reverse(self, order_id: str) -> PaymentOutcome:
        """Close ``order_id``: a succeeded payment is refunded in full, an order never seen cannot charge later."""
        try:
            _require_id(order_id, "order_id")
        except ProtocolError as error:
            return _refused(order_id, error)
        return _outcome(order_id, self._call("POST", f"/v1/orders/{order_id}/reverse", {}))

    def refund(self, payment_id: str, refund_id: str, amount: int | None = None) -> PaymentOutcome:
        """Refund ``amount`` (or all that is left) of a payment; the same ``refund_id`` never refunds twice."""
        try:
            _require_id(payment_id, "payment_id")
            _require_id(refund_id, "refund_id")
            if amount is not None:
                require_amount(amount)
        except ProtocolError as error:
            return _refused(refund_id, error)
        body: dict[str, Any] = {"refund_id": refund_id}
        if amount is not None:
            body["amount"] = amount
        answer = self._call("POST", f"/v1/payments/{payment_id}/refunds", body)
        if answer.status is not None and 200 <= answer.status < 300:
            return PaymentOutcome(
                PaymentStatus.REFUNDED,
                refund_id,
                payment_id=_text(answer.data.get("payment_id")) or payment_id,
                amount=_whole(answer.data.get("amount")),
                message=_MESSAGES[PaymentStatus.REFUNDED],
                http_status=answer.status,
                attempts=answer.attempts,
                data=answer.data,
            )
        return _outcome(refund_id, answer)

    def topup_cash(self, topup_id: str, amount: int, code: str) -> PaymentOutcome:
        """Cash handed over at the register, credited to the wallet whose code was shown (the code is used up)."""
        try:
            _require_id(topup_id, "topup_id")
            require_amount(amount)
            parsed = parse_code(code)
        except ProtocolError as error:
            return _refused(topup_id, error)
        body = {"topup_id": topup_id, "amount": amount, "code": parsed.text}
        return _outcome(topup_id, self._call("POST", "/v1/topups/cash", body))

    # -- transport ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> _Answer:
        """Send, retrying on no answer or a 5xx; the body is the same bytes each time, the nonce is new."""
        content = encode_body(body)
        headers = {"content-type": "application/json"} if content else {}
        answer = _Answer(None, {}, 0)
        for attempt in range(1, self._retries + 2):
            if attempt > 1:
                self._sleep(self._backoff * 2 ** (attempt - 2))
            try:
                response = self._http.request(method, path, content=content, headers=headers)
            except TRANSPORT_ERRORS as error:
                answer = _Answer(None, {}, attempt, type(error).__name__)
                continue
            answer = _Answer(response.status_code, _json_object(response), attempt)
            if answer.decided:
                break
        return answer


def api_category(category: str) -> str | None:
    """A catalog category in the core's words: ``tobacco`` and ``gift_card`` under their other names
    (``Cigarettes``, ``たばこ``, ``prepaid card``...), any other as a lower-case word of a-z, 0-9 and ``_``
    (at most 40 characters); None when nothing of it fits the pattern (a category in Japanese that is
    not a known alias: the core needs no word for goods no rule reads)."""
    folded = unicodedata.normalize("NFKC", category).strip().casefold()
    word = _NOT_WORD.sub("_", folded).strip("_")
    mapped = CATEGORY_ALIASES.get(folded) or CATEGORY_ALIASES.get(word)
    if mapped is not None:
        return mapped
    word = word[:40].rstrip("_")
    return word if CATEGORY_PATTERN.fullmatch(word) else None


def api_categories(categories: Iterable[str]) -> tuple[str, ...]:
    """The distinct categories of a sale as the core takes them, sorted: at most ``MAX_CATEGORIES``, the
    ones the risk rules read kept first when a sale has more."""
    words = {word for category in categories if (word := api_category(category)) is not None}
    risky = [word for word in RISK_CATEGORIES if word in words]
    others = sorted(words - set(RISK_CATEGORIES))
    return tuple(sorted((risky + others)[:MAX_CATEGORIES]))


def is_safe_id(value: object) -> bool:
    """True for an id the core accepts and that can stand in a path as it is (not ``.`` or ``..``)."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None and value.strip(".") != ""


def _require_id(value: str, param: str) -> None:
    if not is_safe_id(value):
        raise ProtocolError(ErrorCode.VALIDATION_FAILED, f"{param}: 1-64 of A-Z a-z 0-9 _ - : .", param=param)


def clerk_message(error: ProtocolError) -> str:
    """What the clerk reads for a refusal of the core. A refusal for time names the clock that is wrong and
    what to do about it: the register's own (``timestamp_stale``) or the customer's phone
    (``code_not_yet_valid``, ``code_expired``), with the seconds the core measured (``ClockSkew``) when it
    gives them; any other refusal is the core's own message."""
    skew = ClockSkew.of(error)
    if error.code is ErrorCode.TIMESTAMP_STALE:
        if skew is None:
            return "This register's clock is off from the core's — fix the register's time."
        core_time = store_time(skew.server_time).strftime("%H:%M:%S")
        how_far = ahead_or_behind(skew.offset_seconds, "the core's")
        return f"This register's clock is {how_far} (the core's time is {core_time}) — fix the register's time."
    if error.code is ErrorCode.CODE_NOT_YET_VALID:
        how_far = ahead_or_behind(skew.offset_seconds) if skew is not None else "ahead"
        return (
            f"The customer's phone clock is {how_far} — ask them to set the time automatically, then show a new code."
        )
    if error.code is ErrorCode.CODE_EXPIRED and skew is not None:
        age = describe_seconds(skew.offset_seconds)
        return (
            f"This code was made {age} ago (a code is taken for {skew.tolerance_seconds} s) — ask for a new code. "
            f"If a new one fails the same way, the customer's phone clock is about {age} behind — ask them to set "
            "the time automatically."
        )
    return error.message


def _refused(key: str, error: ProtocolError) -> PaymentOutcome:
    """Refused at the register: nothing was sent."""
    return PaymentOutcome(ERROR, key, error_code=error.code.value, message=error.message)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:  # not JSON, or not text at all
        return {}
    return data if isinstance(data, dict) else {}


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _outcome(key: str, answer: _Answer) -> PaymentOutcome:
    data = answer.data
    if answer.status is None:
        return PaymentOutcome(
            UNKNOWN,
            key,
            error_code=ErrorCode.SERVICE_UNAVAILABLE.value,
            message=f"The payment service cannot be reached ({answer.failure or 'no answer'}).",
            attempts=answer.attempts,
        )
    if 200 <= answer.status < 300:
        status = str(data.get("status"))
        known = status in KNOWN_STATUSES
        return PaymentOutcome(
            PaymentStatus(status) if known else UNKNOWN,
            key,
            payment_id=_text(data.get("id")),
            amount=_whole(data.get("amount")),
            balance_after=_whole(data.get("balance_after")),
            decline_code=_text(data.get("decline_code")),
            message=_MESSAGES[PaymentStatus(status)] if known else f"The service answered with status {status!r}.",
            http_status=answer.status,
            attempts=answer.attempts,
            data=data,
        )
    error = ProtocolError.from_envelope(answer.status, data)
    reported = error.code.value
    if answer.status == 402 or error.details.get("payment_id"):  # the core decided and stored a declined payment
        return PaymentOutcome(
            PaymentStatus.DECLINED,
            key,
            payment_id=_text(error.details.get("payment_id")),
            decline_code=reported,
            message=clerk_message(error),
            http_status=answer.status,
            attempts=answer.attempts,
            data=data,
        )
    undecided = (answer.status in RETRYABLE_STATUSES and not answer.paused) or answer.replayed
    return PaymentOutcome(
        UNKNOWN if undecided else ERROR,
        key,
        error_code=reported,
        message=clerk_message(error),
        http_status=answer.status,
        attempts=answer.attempts,
        data=data,
    )
