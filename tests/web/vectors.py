"""Test vectors for the web wallet's JavaScript, made by the Python code it must match byte for byte."""

from __future__ import annotations

import json
from typing import Any

from protocol.clock import from_epoch
from protocol.payment_code import COUNTERS_PER_SECOND, MAX_DEVICE_NUMBER, mint_code
from protocol.signing import sign_request

SECRETS = [
    bytes(range(16)),  # the shortest secret allowed
    bytes.fromhex("ff" * 32),
    bytes.fromhex("00" * 31 + "01"),
    bytes(range(200, 248)),  # 48 bytes
    bytes(range(64, 64 + 80)),  # longer than an HMAC block: hashed first
]
DEVICES = [1, 7, 42, 1_000_000, 9_999_998, MAX_DEVICE_NUMBER]
TIMES = [
    0,
    9_999,
    10_000,  # the numeric form's time field wraps here
    1_767_258_000,
    1_767_259_999,
    1_767_260_000,
    1_767_260_001,
    2_000_000_000,
    9_999_999_999,  # the last second the QR form's ten digits hold
]
COUNTERS = [0, 1, 5, COUNTERS_PER_SECOND - 1]


def mint_vectors() -> list[dict[str, Any]]:
    """Every (secret, device, time, counter) combination is too many; walk them so each value recurs."""
    vectors = []
    for i in range(len(SECRETS) * len(DEVICES) * 3):
        secret = SECRETS[i % len(SECRETS)]
        device = DEVICES[(i // len(SECRETS)) % len(DEVICES)]
        moment = TIMES[(i * 7) % len(TIMES)]
        counter = COUNTERS[(i * 3) % len(COUNTERS)]
        code = mint_code(secret, device, moment, counter)
        vectors.append(
            {
                "secret": list(secret),
                "device": device,
                "time": moment,
                "counter": counter,
                "qr": code.qr,
                "numeric": code.numeric,
            }
        )
    return vectors


REQUESTS: list[tuple[str, str, str, bytes]] = [
    ("dev_1", "GET", "/v1/wallet", b""),
    ("dev_42", "get", "/v1/wallet/history", b""),  # the method is upper-cased before signing
    ("dev_9999999", "POST", "/v1/wallet/payments/pay_abc123/confirm", b'{"decision":"approve"}'),
    ("dev_7", "POST", "/v1/orders/o-1:2.3_4/reverse?x=1&y=%20z", b"{}"),
    ("term_0123abcd", "POST", "/v1/payments", json.dumps({"order_id": "o", "amount": 120, "code": "38"}).encode()),
    ("dev_3", "POST", "/v1/topups/card", json.dumps({"note": "お買い上げ ¥1,000"}, ensure_ascii=False).encode()),
    ("dev_5", "POST", "/v1/wallet/sign-out-everywhere", b"x" * 5000),  # many SHA-256 blocks
]
NONCES = ["0" * 32, "ffffffffffffffffffffffffffffffff", "n", "a" * 64]


def sign_vectors() -> list[dict[str, Any]]:
    vectors = []
    for i, (key_id, method, path, body) in enumerate(REQUESTS):
        for j, moment in enumerate((1_767_258_000, 1_767_259_999 + i, 2_000_000_000)):
            secret = SECRETS[(i + j) % len(SECRETS)]
            nonce = NONCES[(i + j) % len(NONCES)]
            headers = sign_request(secret, key_id, method, path, body, from_epoch(moment), nonce=nonce).as_dict()
            vectors.append(
                {
                    "secret": list(secret),
                    "key_id": key_id,
                    "method": method,
                    "path": path,
                    "body": body.decode("utf-8"),
                    "time": moment,
                    "nonce": nonce,
                    "headers": headers,
                }
            )
    return vectors


DAMM_INPUTS = ["", "0", "5724", "38", "380000001", "3800000420001" + "1234567", "9" * 39, "0123456789" * 4]
