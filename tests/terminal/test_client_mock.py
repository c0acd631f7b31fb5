"""The register's payment client against an in-memory core that checks every signature
(``tests.terminal.fake_core``): signing, retries with the same order and a new nonce, what a lost answer or
a core that is down leaves, local refusals, and any mix of faults ending in an honest outcome."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import ErrorCode, ManualClock, read_signed_headers, verify_signature
from terminal import PaymentClient, PaymentOutcome
from tests.terminal.fake_core import (
    BASE_URL,
    NOW,
    SECRET,
    STATUSES,
    TERMINAL,
    Behaviour,
    Register,
    a_code,
    decline,
    error_response,
    make_register,
    status,
)


@pytest.fixture
def register() -> Iterator[Register]:
    made = make_register()
    yield made
    made.client.close()


def test_a_payment_is_signed_sent_once_and_succeeds(register: Register) -> None:
    """One signed POST whose body is the compact JSON of order id, amount and code; the answer is the outcome."""
    code = a_code(register.clock)
    outcome = register.client.pay("o-1", 1_500, code, description="bento")
    assert outcome == PaymentOutcome(
        "succeeded",
        "o-1",
        payment_id="pay_1",
        amount=1_500,
        balance_after=8_500,
        message="Approved.",
        http_status=200,
        attempts=1,
    )
    [seen] = register.core.seen
    assert (seen.method, seen.path, seen.refused) == ("POST", "/v1/payments", None)
    expected = {"order_id": "o-1", "amount": 1_500, "code": code, "description": "bento"}
    assert seen.body == json.dumps(expected, separators=(",", ":")).encode()
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-possim-key-id"] == TERMINAL
    assert seen.headers["x-possim-timestamp"] == str(int(NOW.timestamp()))
    assert register.sleeps == []


def test_a_decline_is_a_final_outcome_with_its_code_and_no_retry(register: Register) -> None:
    register.core.script["pay"] = [decline()]
    outcome = register.client.pay("o-2", 99_999, a_code(register.clock))
    assert (outcome.status, outcome.decline_code, outcome.error_code) == ("declined", "insufficient_funds", None)
    assert (outcome.payment_id, outcome.http_status, outcome.attempts) == ("pay_declined", 402, 1)
    assert outcome.final and outcome.message == "The balance is too low for this payment."
    assert len(register.core.seen) == 1


@pytest.mark.parametrize("code", [ErrorCode.CODE_EXPIRED, ErrorCode.CODE_ALREADY_USED, ErrorCode.CODE_FORGED])
def test_a_code_refused_by_the_core_is_a_decline(register: Register, code: ErrorCode) -> None:
    register.core.script["pay"] = [lambda _request: error_response(code)]
    outcome = register.client.pay("o-3", 100, a_code(register.clock))
    assert (outcome.status, outcome.decline_code, outcome.http_status) == ("declined", code.value, 402)


def test_a_lost_answer_is_retried_with_the_same_order_and_body_and_a_new_nonce(register: Register) -> None:
    """The core charged but the answer was lost: the retry replays the same request, signed afresh, once."""
    register.core.script["pay"] = ["drop"]
    outcome = register.client.pay("o-4", 700, a_code(register.clock))
    assert (outcome.status, outcome.payment_id, outcome.attempts) == ("succeeded", "pay_1", 2)
    first, second = register.core.seen
    assert (first.outcome, second.outcome) == ("drop", "ok")
    assert first.body == second.body and first.json["order_id"] == second.json["order_id"] == "o-4"
    assert first.nonce != second.nonce
    assert int(second.headers["x-possim-timestamp"]) >= int(first.headers["x-possim-timestamp"])
    assert register.sleeps == [0.2]
    assert len(register.core.orders) == 1  # charged once


@pytest.mark.parametrize("failure", [status(500), status(502, b"<html>Bad gateway</html>"), status(503), "down"])
def test_server_errors_and_refused_connections_are_retried(register: Register, failure: Behaviour) -> None:
    register.core.script["pay"] = [failure, failure]
    outcome = register.client.pay("o-5", 300, a_code(register.clock))
    assert (outcome.status, outcome.attempts) == ("succeeded", 3)
    assert register.sleeps == [0.2, 0.4]
    assert {seen.json["order_id"] for seen in register.core.seen} == {"o-5"}


def test_no_answer_at_all_then_the_query_finds_the_charge(register: Register) -> None:
    """Every payment attempt lost its answer; the lookup says the order succeeded, so nothing is reversed."""
    register.core.script["pay"] = ["drop"] * 4
    outcome = register.client.pay("o-6", 800, a_code(register.clock))
    assert (outcome.status, outcome.payment_id, outcome.attempts) == ("succeeded", "pay_1", 5)
    assert register.core.paths() == ["POST /v1/payments"] * 4 + ["GET /v1/orders/o-6"]
    assert register.sleeps == [0.2, 0.4, 0.8]


def test_core_down_for_the_payment_and_the_query_then_the_reverse_closes_the_order(register: Register) -> None:
    """Nothing got through: after the retries and the lookup, the reverse closes the order (retried too)."""
    register.core.script = {"pay": ["down"] * 4, "query": ["down"] * 4, "reverse": ["down"]}
    outcome = register.client.pay("o-7", 900, a_code(register.clock))
    assert (outcome.status, outcome.order_id, outcome.attempts) == ("reversed", "o-7", 10)
    assert outcome.final
    assert register.core.paths() == (
        ["POST /v1/payments"] * 4 + ["GET /v1/orders/o-7"] * 4 + ["POST /v1/orders/o-7/reverse"] * 2
    )
    assert register.core.seen[-1].body == b"{}"
    assert register.sleeps == [0.2, 0.4, 0.8] * 2 + [0.2]


def test_an_order_the_core_never_saw_is_reversed(register: Register) -> None:
    """The payment never arrived (404 on lookup): the reverse closes the order so a late copy cannot charge."""
    register.core.script["pay"] = ["down"] * 4
    outcome = register.client.pay("o-8", 900, a_code(register.clock))
    assert outcome.status == "reversed"
    assert register.core.paths()[-2:] == ["GET /v1/orders/o-8", "POST /v1/orders/o-8/reverse"]


def test_core_down_throughout_is_unknown_and_never_raises(register: Register) -> None:
    register.core.script = {"pay": ["down"] * 4, "query": ["down"] * 4, "reverse": ["down"] * 4}
    outcome = register.client.pay("o-9", 900, a_code(register.clock))
    assert (outcome.status, outcome.error_code, outcome.http_status) == ("unknown", "service_unavailable", None)
    assert not outcome.final and outcome.attempts == 12
    assert "Do not hand over the goods" in outcome.message


def test_a_misread_code_never_leaves_the_register(register: Register) -> None:
    """A substituted digit fails the Damm check at the register: an error outcome, and no request at all."""
    code = a_code(register.clock, numeric=True)
    misread = code[:10] + str((int(code[10]) + 1) % 10) + code[11:]
    outcome = register.client.pay("o-10", 100, misread)
    assert (outcome.status, outcome.error_code, outcome.attempts) == ("error", "code_checksum_failed", 0)
    assert outcome.message == "The code was misread; scan it again."
    for other, expected in [("4901234567894", "code_malformed"), ("28" + code[2:], "code_unknown_issuer")]:
        assert register.client.pay("o-11", 100, other).error_code == expected
    assert register.client.topup_cash("t-1", 1_000, misread).error_code == "code_checksum_failed"
    assert register.core.seen == []


@pytest.mark.parametrize(
    ("order_id", "amount", "expected"),
    [
        ("o-12", 0, "amount_invalid"),
        ("o-12", -100, "amount_invalid"),
        ("o-12", True, "amount_invalid"),
        ("o-12", 10.0, "amount_invalid"),
        ("", 100, "parameter_invalid"),
        ("a/b", 100, "parameter_invalid"),
        ("..", 100, "parameter_invalid"),
        ("o 12", 100, "parameter_invalid"),
        ("x" * 65, 100, "parameter_invalid"),
    ],
)
def test_what_the_core_would_refuse_is_refused_locally(
    register: Register, order_id: str, amount: Any, expected: str
) -> None:
    outcome = register.client.pay(order_id, amount, a_code(register.clock))
    assert (outcome.status, outcome.error_code, outcome.attempts) == ("error", expected, 0)
    assert register.core.seen == []


def test_a_hand_typed_code_is_sent_without_its_spaces(register: Register) -> None:
    code = a_code(register.clock, numeric=True)
    typed = " ".join(code[i : i + 4] for i in range(0, 22, 4))
    assert register.client.pay("o-13", 100, typed).status == "succeeded"
    assert register.core.seen[0].json["code"] == code


def test_an_idempotency_conflict_surfaces_as_an_error(register: Register) -> None:
    """The same order id with another amount: the core's 409 is an error outcome, not retried, nothing reversed."""
    assert register.client.pay("o-14", 100, a_code(register.clock)).status == "succeeded"
    outcome = register.client.pay("o-14", 200, a_code(register.clock, counter=1))
    assert (outcome.status, outcome.error_code, outcome.http_status) == ("error", "idempotency_conflict", 409)
    assert outcome.message == "This order id was used with other parameters."
    assert register.core.paths() == ["POST /v1/payments"] * 2


@pytest.mark.parametrize(
    ("code", "status_"),
    [(ErrorCode.RATE_LIMITED, 429), (ErrorCode.VALIDATION_FAILED, 422)],  # nonce_replayed: tests/test_chaos.py
)
def test_client_errors_are_error_outcomes_without_retry(register: Register, code: ErrorCode, status_: int) -> None:
    register.core.script["pay"] = [lambda _request: error_response(code)]
    outcome = register.client.pay("o-15", 100, a_code(register.clock))
    assert (outcome.status, outcome.error_code, outcome.http_status, outcome.attempts) == (
        "error",
        code.value,
        status_,
        1,
    )
    assert register.sleeps == []


def test_a_wrong_terminal_secret_is_refused_by_the_core_and_reported() -> None:
    made = make_register(secret=b"another-secret-0" * 2)
    with made.client as client:
        outcome = client.pay("o-16", 100, a_code(made.clock))
    assert (outcome.status, outcome.error_code, outcome.http_status) == ("error", "signature_invalid", 401)
    assert made.core.seen[0].refused is ErrorCode.SIGNATURE_INVALID


def test_an_unreadable_answer_is_handled() -> None:
    """A 500 with an HTML body, then a 200 that is not a payment: neither raises, neither counts as paid.

    The register cannot tell what happened, so it asks and closes the order like any unknown outcome.
    """
    made = make_register(retries=1)
    made.core.script = {"pay": [status(500, b"<html>oops"), status(200, b"[1, 2]")]}
    outcome = made.client.pay("o-17", 100, a_code(made.clock))
    assert (outcome.status, outcome.attempts) == ("reversed", 4)
    assert made.core.paths()[2:] == ["GET /v1/orders/o-17", "POST /v1/orders/o-17/reverse"]
    made.core.script = {"query": [status(500, b"\xff\xfe")] * 2}
    outcome = made.client.query("o-18")
    assert (outcome.status, outcome.error_code, outcome.http_status) == ("unknown", "service_unavailable", 500)
    made.client.close()


def test_query_reverse_refund_and_cash_topup(register: Register) -> None:
    client = register.client
    missing = client.query("nope")
    assert (missing.status, missing.error_code, missing.http_status) == ("error", "resource_missing", 404)
    client.pay("o-19", 2_000, a_code(register.clock))
    assert client.query("o-19").status == "succeeded"
    part = client.refund("pay_1", "re-1", 400)
    assert (part.status, part.order_id, part.payment_id, part.amount) == ("refunded", "re-1", "pay_1", 400)
    assert register.core.seen[-1].json == {"refund_id": "re-1", "amount": 400}
    client.refund("pay_1", "re-2")
    assert register.core.seen[-1].json == {"refund_id": "re-2"}
    register.core.script["refund"] = [lambda _request: error_response(ErrorCode.REFUND_EXCEEDS_PAYMENT)]
    over = client.refund("pay_1", "re-3", 9_999)
    assert (over.status, over.error_code) == ("error", "refund_exceeds_payment")
    assert client.refund("pay_1", "re-4", 0).error_code == "amount_invalid"
    reversed_ = client.reverse("o-19")
    assert (reversed_.status, reversed_.payment_id) == ("reversed", "pay_1")
    code = a_code(register.clock, counter=2, numeric=True)
    topped = client.topup_cash("t-2", 3_000, code)
    assert (topped.status, topped.order_id, topped.amount, topped.balance_after) == ("succeeded", "t-2", 3_000, 13_000)
    assert register.core.seen[-1].json == {"topup_id": "t-2", "amount": 3_000, "code": code}
    assert all(seen.refused is None for seen in register.core.seen)


def test_a_refund_whose_answer_is_lost_is_retried_under_the_same_refund_id(register: Register) -> None:
    register.core.script["refund"] = ["drop", "down"]
    outcome = register.client.refund("pay_9", "re-9", 100)
    assert (outcome.status, outcome.attempts) == ("refunded", 3)
    assert {seen.json["refund_id"] for seen in register.core.seen} == {"re-9"}
    register.core.script["topup"] = ["down"] * 4
    lost = register.client.topup_cash("t-9", 1_000, a_code(register.clock, counter=3))
    assert (lost.status, lost.error_code, lost.attempts) == ("unknown", "service_unavailable", 4)


def test_an_outcome_is_frozen_and_comparable_without_its_data(register: Register) -> None:
    outcome = register.client.pay("o-20", 100, a_code(register.clock))
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.status = "declined"  # type: ignore[misc]
    assert outcome.data is not None and outcome.data["object"] == "payment"
    assert hash(outcome) == hash(dataclasses.replace(outcome, data=None))


def test_new_order_ids_are_unique_and_acceptable() -> None:
    ids = {PaymentClient.new_order_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("ord-") for i in ids)
    made = make_register()
    assert made.client.pay(ids.pop(), 100, a_code(made.clock)).status == "succeeded"
    made.client.close()


def test_the_url_sent_is_the_url_signed_whatever_the_base_url() -> None:
    """A base URL with a path prefix and a trailing slash: the register signs the target that goes on the wire,
    and only a request with a body says it is JSON."""
    clock = ManualClock(NOW)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        target = request.url.raw_path.decode()
        verify_signature(SECRET, read_signed_headers(request.headers), request.method, target, request.content, clock())
        return httpx.Response(200, json={"status": "reversed", "id": "pay_1"})

    client = PaymentClient(BASE_URL + "/core/", TERMINAL, SECRET, clock=clock, transport=httpx.MockTransport(handler))
    with client:
        assert client.query("o-1").status == "reversed"
        assert client.reverse("o-1").status == "reversed"
    assert [request.url.raw_path for request in seen] == [b"/core/v1/orders/o-1", b"/core/v1/orders/o-1/reverse"]
    assert seen[0].headers.get("content-type") is None and seen[1].headers["content-type"] == "application/json"


faults = st.sampled_from(["down", "drop", "ok", "ok", status(500), status(503), decline()])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(faults, max_size=6), st.lists(faults, max_size=6), st.lists(faults, max_size=6))
def test_any_mix_of_faults_ends_in_an_honest_outcome(
    pay_faults: list[Behaviour], query_faults: list[Behaviour], reverse_faults: list[Behaviour]
) -> None:
    """Whatever fails, pay returns an outcome (never raises), signs every attempt with a new nonce, always
    sends the same body, and says ``succeeded`` only if the core holds a succeeded payment for the order."""
    made = make_register(retries=2)
    made.core.script = {"pay": list(pay_faults), "query": list(query_faults), "reverse": list(reverse_faults)}
    outcome = made.client.pay("o-p", 500, a_code(made.clock))
    made.client.close()
    assert outcome.status in STATUSES and outcome.order_id == "o-p"
    assert outcome.attempts == len(made.core.seen) <= 9
    assert all(seen.refused is None for seen in made.core.seen)
    assert len({seen.nonce for seen in made.core.seen}) == len(made.core.seen)
    assert len({seen.body for seen in made.core.seen if seen.path == "/v1/payments"}) == 1
    stored = made.core.orders.get("o-p", (b"", {}))[1].get("status")
    if outcome.status == "succeeded":
        assert stored == "succeeded"
    if outcome.status == "reversed":
        assert stored == "reversed"
    if outcome.status == "unknown":
        assert outcome.error_code == "service_unavailable"
