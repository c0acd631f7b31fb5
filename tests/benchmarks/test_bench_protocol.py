"""Benchmarks of the protocol's hot paths (``make bench`` times them; ``make test`` runs each once)."""

from __future__ import annotations

import secrets

from pytest_benchmark.fixture import BenchmarkFixture

from protocol import (
    ManualClock,
    mint_code,
    parse_code,
    read_signed_headers,
    sign_request,
    verify_code,
    verify_signature,
)

SECRET = secrets.token_bytes(32)
CLOCK = ManualClock()


def test_bench_mint(benchmark: BenchmarkFixture) -> None:
    code = benchmark(mint_code, SECRET, 1_234_567, CLOCK(), 3)
    assert len(code.numeric) == 22


def test_bench_parse_and_verify(benchmark: BenchmarkFixture) -> None:
    code = mint_code(SECRET, 1_234_567, CLOCK(), 3)

    def parse_and_verify() -> int:
        return verify_code(parse_code(code.numeric), SECRET, CLOCK()).minted_at

    assert benchmark(parse_and_verify) == code.minted_at


def test_bench_sign_and_verify_request(benchmark: BenchmarkFixture) -> None:
    body = b'{"order_id":"o-1","amount":1280,"code":"3800000421795374332347642214791642099238"}'

    def round_trip() -> None:
        headers = sign_request(SECRET, "term_x", "POST", "/v1/payments", body, CLOCK()).as_dict()
        verify_signature(SECRET, read_signed_headers(headers), "POST", "/v1/payments", body, CLOCK())

    benchmark(round_trip)
