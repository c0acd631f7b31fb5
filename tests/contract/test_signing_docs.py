"""docs/SIGNING.md is the signing scheme a third party implements: its vectors hold against
``protocol.signing``, the doc and docs/signing-vectors.json say the same, and its two examples (curl and
openssl, Python with httpx) are run as written against a live core."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from payment_core import terminals
from payment_core.core import Core
from payment_core.server import ServerThread
from protocol.signing import canonical_request, compute_signature, request_key

DOCS = Path(__file__).resolve().parents[2] / "docs"
SIGNING_MD = (DOCS / "SIGNING.md").read_text(encoding="utf-8")
VECTORS: dict[str, Any] = json.loads((DOCS / "signing-vectors.json").read_text(encoding="utf-8"))
_EXAMPLE_TIMEOUT_SECONDS = 30


def fenced(info: str) -> list[str]:
    """The contents of the fenced blocks whose info string is exactly ``info``, in document order."""
    return re.findall(rf"^```{re.escape(info)}\n(.*?)^```$", SIGNING_MD, flags=re.MULTILINE | re.DOTALL)


def vector_ids() -> list[str]:
    return [str(vector["name"]) for vector in VECTORS["vectors"]]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=vector_ids())
def test_vector_holds_against_the_reference_signer(vector: dict[str, Any]) -> None:
    secret, body = bytes.fromhex(vector["secret_hex"]), vector["body"].encode("utf-8")
    args = (vector["key_id"], vector["method"], vector["path"], vector["timestamp"], vector["nonce"], body)
    assert hashlib.sha256(body).hexdigest() == vector["body_sha256"]
    assert canonical_request(*args) == vector["canonical"].encode("utf-8")
    assert request_key(secret).hex() == vector["derived_key_hex"]
    assert "v1=" + compute_signature(secret, *args) == vector["signature"]


def test_the_vectors_cover_a_json_post_a_query_get_and_a_non_ascii_body() -> None:
    vectors = VECTORS["vectors"]
    assert any(v["method"].upper() == "POST" and v["body"].startswith("{") for v in vectors)
    assert any(v["method"].upper() == "GET" and "?" in v["path"] and v["body"] == "" for v in vectors)
    assert any(not v["body"].isascii() for v in vectors)
    assert VECTORS["empty_body_sha256"] == hashlib.sha256(b"").hexdigest()
    assert VECTORS["empty_body_sha256"] in SIGNING_MD


def _printed_vector(block: str) -> dict[str, str]:
    fields = dict(line.split(": ", 1) for line in block.splitlines())
    if fields["body"] == "(empty)":
        fields["body"] = ""
    return fields


def test_the_doc_prints_exactly_the_json_vectors() -> None:
    printed = [_printed_vector(block) for block in fenced("text signing-vector")]
    canonicals = [block.removesuffix("\n") for block in fenced("text signing-canonical")]
    expected = VECTORS["vectors"]
    assert len(printed) == len(canonicals) == len(expected) >= 3
    for shown, canonical, vector in zip(printed, canonicals, expected, strict=True):
        assert shown == {key: str(value) for key, value in vector.items() if key not in ("name", "canonical")}
        assert canonical == vector["canonical"]
        assert f"{vector['name']}\n" in SIGNING_MD


def test_the_doc_states_the_constants_of_the_reference_signer() -> None:
    for text in (
        "possim-req-v1",
        "possim/request-signing-key/v1",
        "X-Possim-Key-Id",
        "X-Possim-Timestamp",
        "X-Possim-Nonce",
        "X-Possim-Signature",
        "±120 s",
        "signature_missing",
        "signature_invalid",
        "timestamp_stale",
        "nonce_replayed",
        "terminal_unknown",
    ):
        assert text in SIGNING_MD, text


@pytest.fixture
def example_env(core: Core, server: ServerThread) -> dict[str, str]:
    """A provisioned register, as the examples' environment variables (the core's clock is the fixture's
    frozen copy of the system time: the examples use the real time, a few seconds later at most)."""
    made = terminals.provision_terminal(core, "Docs store", "register-docs", "test")
    return os.environ | {
        "POSSIM_URL": server.url,
        "POSSIM_TERMINAL_ID": made.terminal.id,
        "POSSIM_TERMINAL_SECRET": made.secret.hex(),
    }


def run_example(command: list[str], code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, input=code, env=env, capture_output=True, text=True, timeout=_EXAMPLE_TIMEOUT_SECONDS, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_curl_and_openssl_example_is_accepted(example_env: dict[str, str]) -> None:
    (script,) = fenced("bash possim-example")
    body, status = run_example(["bash", "-s"], script, example_env).strip().rsplit("\n", 1)
    assert status == "404"
    assert json.loads(body)["error"]["code"] == "resource_missing"


def test_the_python_example_is_accepted(example_env: dict[str, str]) -> None:
    (program,) = fenced("python possim-example")
    imported = set(re.findall(r"^(?:import|from) (\w+)", program, flags=re.MULTILINE))
    assert imported == {"hashlib", "hmac", "json", "os", "secrets", "time", "httpx"}  # stdlib and httpx only
    assert run_example([sys.executable, "-"], program, example_env).strip() == "400 code_malformed"
