"""New-password rules (NIST SP 800-63B 5.1.1.2), the breached-password sources and argon2id hashing."""

from __future__ import annotations

import gzip
import hashlib
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from argon2 import extract_parameters

from payment_core.config import PasswordPolicy
from payment_core.passwords import (
    BUILTIN_RANGES,
    BreachedRanges,
    PasswordHasher,
    RangeApi,
    RangeDirectory,
    RangeFile,
    check_new_password,
    is_breached,
    load_ranges,
)
from protocol import ErrorCode, ProtocolError

POLICY = PasswordPolicy()
CHEAP = PasswordPolicy(time_cost=1, memory_cost=8192, parallelism=1)
EMAIL = "hanako.yamada@example.jp"
PHONE = "09012345678"
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "fixtures" / "passwords" / "build_ranges.py"
# A small breached list for the file, directory and API sources; every entry is long enough to pass the length rule.
LEAKED = ["sakura-sakura-2024", "tokyo tower 333m", "パスワードパスワード12"]
UNLISTED = "this one was never leaked, 7f3a"


def sha1_split(password: str) -> tuple[str, str]:
    digest = hashlib.sha1(password.encode("utf-8")).hexdigest().upper()
    return digest[:5], digest[5:]


def assert_refused(ranges: BreachedRanges, password: str, words: str, phone: str | None = PHONE) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_new_password(POLICY, ranges, password, EMAIL, phone)
    assert (caught.value.code, caught.value.param) == (ErrorCode.VALIDATION_FAILED, "password")
    assert words in caught.value.message


# -- the built-in list (zxcvbn's 30,000 common passwords) --------------------------------------


@pytest.fixture(scope="module")
def builtin() -> BreachedRanges:
    return load_ranges("builtin")


def test_builtin_file_has_30000_sorted_ranges() -> None:
    lines = gzip.decompress(BUILTIN_RANGES.read_bytes()).decode("ascii").splitlines()
    assert len(lines) == len(set(lines)) == 30_000
    assert lines == sorted(lines)
    assert lines[0] == "00001:5FC6C0EE71BB642AB181DD2095BE84C6B50"


@pytest.mark.parametrize(
    "password", ["123456", "password", "qwerty123", "iloveyou", "trustno1", "p@ssw0rd", "1qaz2wsx3edc"]
)
def test_builtin_list_knows_common_passwords(builtin: BreachedRanges, password: str) -> None:
    assert is_breached(builtin, password)


def test_builtin_list_is_lowercase_only(builtin: BreachedRanges) -> None:
    assert is_breached(builtin, "password")
    assert not is_breached(builtin, "Password")


@pytest.mark.parametrize("password", ["1qaz2wsx3edc", "qwerty123456", "123456789qwerty", "leavemealone"])
def test_listed_password_refused_at_sign_up(builtin: BreachedRanges, password: str) -> None:
    assert_refused(builtin, password, "exposed in data breaches")


def test_random_passphrase_accepted(builtin: BreachedRanges) -> None:
    words = ["maple", "lantern", "otter", "quartz", "harbor", "violet", "ramen", "glacier", "kite", "sumo"]
    passphrase = " ".join(secrets.choice(words) for _ in range(5)) + f" {secrets.randbelow(10_000)}"
    assert not is_breached(builtin, passphrase)
    check_new_password(POLICY, builtin, passphrase, EMAIL, PHONE)
    check_new_password(POLICY, builtin, secrets.token_urlsafe(24), EMAIL, PHONE)


def test_xkcd_passphrase_is_not_in_the_builtin_list(builtin: BreachedRanges) -> None:
    # tests.support.PASSWORD: sign-up tests rely on it passing the built-in list.
    for famous in ("correct horse battery staple", "correcthorsebatterystaple"):
        assert not is_breached(builtin, famous)
        check_new_password(POLICY, builtin, famous, EMAIL, PHONE)


# -- length, identity and normalisation -----------------------------------------------------------


def test_length_bounds_in_code_points(builtin: BreachedRanges) -> None:
    assert_refused(builtin, "k7#vq2!mz9w", "at least 12 characters")
    check_new_password(POLICY, builtin, "k7#vq2!mz9wx", EMAIL, PHONE)
    check_new_password(POLICY, builtin, "x" * 1024, EMAIL, PHONE)
    assert_refused(builtin, "x" * 1025, "at most 1024 characters")
    check_new_password(POLICY, builtin, "夜桜を見に行こう、上野公園で", EMAIL, PHONE)  # 14 code points, 42 UTF-8 bytes
    assert_refused(builtin, "夜桜を見に行こう上野で", "at least 12")  # 11 code points


@pytest.mark.parametrize("password", [EMAIL, " HANAKO.YAMADA@EXAMPLE.JP ", "hanako.yamada", "Hanako.Yamada  "])
def test_email_and_local_part_refused(builtin: BreachedRanges, password: str) -> None:
    assert_refused(builtin, password, "e-mail address")


@pytest.mark.parametrize("stored_phone", ["09012345678", "+819012345678", "090-1234-5678"])
@pytest.mark.parametrize(
    "password", ["+819012345678", "090-1234-5678", "+81 90 1234 5678", "(090) 1234 5678", "+81 (0)90 1234 5678"]
)
def test_phone_refused_in_both_japanese_forms(builtin: BreachedRanges, stored_phone: str, password: str) -> None:
    assert_refused(builtin, password, "phone number", phone=stored_phone)


def test_phone_rule_needs_the_whole_password_to_be_the_number(builtin: BreachedRanges) -> None:
    check_new_password(POLICY, builtin, "+819012345679", EMAIL, PHONE)  # another number
    check_new_password(POLICY, builtin, "my number 09012345678", EMAIL, PHONE)
    check_new_password(POLICY, builtin, "+819012345678", EMAIL, None)
    check_new_password(POLICY, builtin, "+1 415 555 0100", EMAIL, "+81 415 555 0100")  # same digits, not Japan
    assert_refused(builtin, "+1 415 555 0100", "phone number", phone="14155550100")


def test_full_width_digits_are_the_ascii_password(builtin: BreachedRanges) -> None:
    assert is_breached(builtin, "１２３４５６")  # NFKC of full-width 123456
    assert_refused(builtin, "１ｑａｚ２ｗｓｘ３ｅｄｃ", "exposed in data breaches")  # full-width 1qaz2wsx3edc
    assert_refused(builtin, "１２３４５６７８９０１", "at least 12")
    check_new_password(POLICY, builtin, "１２３４５６７８９０１２", EMAIL, PHONE)  # 123456789012 is not listed
    assert_refused(builtin, "＋８１９０１２３４５６７８", "phone number")


def test_length_is_counted_after_nfkc(builtin: BreachedRanges) -> None:
    check_new_password(POLICY, builtin, "ﬁ" * 6, EMAIL, PHONE)  # 6 ligatures are 12 characters: fifififififi
    assert_refused(builtin, "ﬁ" * 5 + "x", "at least 12")


# -- RangeFile and the build script ---------------------------------------------------------------


def range_lines(passwords: list[str]) -> list[str]:
    return [":".join(sha1_split(password)) for password in passwords]


def test_range_file_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    lines = range_lines(LEAKED)
    path.write_text("\n".join([lines[0].lower(), "", *lines[1:]]) + "\n", encoding="ascii")
    ranges = RangeFile(path)
    assert all(is_breached(ranges, password) for password in LEAKED)
    assert not is_breached(ranges, UNLISTED)
    prefix, suffix = sha1_split(LEAKED[0])
    assert ranges.suffixes(prefix) == {suffix}


def test_range_file_rejects_malformed_lines_and_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    path.write_text(range_lines(LEAKED)[0] + "\nnot a range\n", encoding="ascii")
    with pytest.raises(ValueError, match=r"ranges\.txt:2: expected PREFIX:SUFFIX"):
        RangeFile(path)
    with pytest.raises(ValueError, match="5 uppercase hex digits"):
        load_ranges("builtin").suffixes("../..")


def test_build_script_output_is_deterministic_and_readable(tmp_path: Path) -> None:
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join([*LEAKED, LEAKED[0], "", "ｐａｓｓｗｏｒｄ１２３"]) + "\n", encoding="utf-8")
    outputs = [tmp_path / "a.txt.gz", tmp_path / "b.txt.gz"]
    for output in outputs:
        subprocess.run([sys.executable, str(BUILD_SCRIPT), str(wordlist), str(output)], check=True, capture_output=True)
    first, second = (output.read_bytes() for output in outputs)
    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # gzip mtime
    assert gzip.decompress(first).decode("ascii").splitlines() == sorted(range_lines([*LEAKED, "password123"]))
    ranges = RangeFile(outputs[0])
    assert all(is_breached(ranges, password) for password in [*LEAKED, "password123"])


# -- RangeDirectory (HIBP downloader layout) ------------------------------------------------------


def write_hibp_directory(directory: Path, passwords: list[str], padding: list[str]) -> None:
    """One ``PREFIX.txt`` per prefix, CRLF ``SUFFIX:COUNT`` lines; ``padding`` entries get count 0."""
    files: dict[str, list[str]] = {}
    for count, password in enumerate(passwords + padding, start=1):
        prefix, suffix = sha1_split(password)
        files.setdefault(prefix, []).append(f"{suffix}:{0 if password in padding else count * 1000}")
    for prefix, lines in files.items():
        (directory / f"{prefix}.txt").write_bytes("\r\n".join(lines).encode("ascii"))


def test_range_directory_reads_hibp_layout(tmp_path: Path) -> None:
    write_hibp_directory(tmp_path, LEAKED, padding=[UNLISTED])
    ranges = load_ranges(str(tmp_path))
    assert isinstance(ranges, RangeDirectory)
    assert all(is_breached(ranges, password) for password in LEAKED)
    assert not is_breached(ranges, UNLISTED)
    assert_refused(ranges, LEAKED[1], "exposed in data breaches")


def test_range_directory_missing_prefix_fails_closed(tmp_path: Path) -> None:
    ranges = RangeDirectory(tmp_path)
    with pytest.raises(ProtocolError) as caught:
        check_new_password(POLICY, ranges, UNLISTED, EMAIL, PHONE)
    assert caught.value.code is ErrorCode.SERVICE_UNAVAILABLE
    with pytest.raises(ValueError, match="5 uppercase hex digits"):
        ranges.suffixes("../00")
    with pytest.raises(ValueError, match="not a directory"):
        RangeDirectory(tmp_path / "absent")


# -- RangeApi against a real HTTP server ----------------------------------------------------------


@dataclass
class RangeServer:
    """A range API on 127.0.0.1 serving ``LEAKED`` with count-0 padding, recording every request."""

    ranges: dict[str, list[str]]
    paths: list[str] = field(default_factory=list)
    padding_headers: list[str | None] = field(default_factory=list)
    delay_seconds: float = 0.0
    status: int = 200
    httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                server.padding_headers.append(self.headers.get("Add-Padding"))
                time.sleep(server.delay_seconds)
                prefix = self.path.removeprefix("/range/")
                body = "\r\n".join(server.ranges.get(prefix, [])).encode("ascii")
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first, as the timeout test wants

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()


@pytest.fixture
def range_server() -> Iterator[RangeServer]:
    served: dict[str, list[str]] = {}
    for count, password in enumerate(LEAKED, start=1):
        prefix, suffix = sha1_split(password)
        served.setdefault(prefix, []).append(f"{suffix}:{count}")
    prefix, suffix = sha1_split(UNLISTED)
    served.setdefault(prefix, []).append(f"{suffix}:0")  # padding: must not count as breached
    server = RangeServer(served)
    server.start()
    yield server
    server.stop()


def test_range_api_sends_only_prefixes(range_server: RangeServer) -> None:
    ranges = RangeApi(range_server.url + "/")
    assert all(is_breached(ranges, password) for password in LEAKED)
    assert not is_breached(ranges, UNLISTED)
    assert not is_breached(ranges, secrets.token_hex(16))
    assert_refused(ranges, LEAKED[0], "exposed in data breaches")
    check_new_password(POLICY, ranges, UNLISTED, EMAIL, PHONE)
    assert len(range_server.paths) == 7
    assert all(re.fullmatch(r"/range/[0-9A-F]{5}", path) for path in range_server.paths), range_server.paths
    assert {f"/range/{sha1_split(password)[0]}" for password in [*LEAKED, UNLISTED]} <= set(range_server.paths)
    assert set(range_server.padding_headers) == {"true"}


def test_range_api_down_fails_closed(range_server: RangeServer) -> None:
    ranges = RangeApi(range_server.url)
    range_server.stop()
    for attempt in (
        lambda: is_breached(ranges, UNLISTED),
        lambda: check_new_password(POLICY, ranges, UNLISTED, EMAIL, PHONE),
    ):
        with pytest.raises(ProtocolError) as caught:
            attempt()
        assert caught.value.code is ErrorCode.SERVICE_UNAVAILABLE
        assert caught.value.status == 503


def test_range_api_error_status_and_timeout_fail_closed(range_server: RangeServer) -> None:
    range_server.status = 500
    with pytest.raises(ProtocolError) as caught:
        is_breached(RangeApi(range_server.url), LEAKED[0])
    assert caught.value.code is ErrorCode.SERVICE_UNAVAILABLE
    range_server.status, range_server.delay_seconds = 200, 1.0
    with pytest.raises(ProtocolError) as caught:
        is_breached(RangeApi(range_server.url, timeout=0.2), LEAKED[0])
    assert caught.value.code is ErrorCode.SERVICE_UNAVAILABLE


# -- load_ranges ----------------------------------------------------------------------------------


def test_load_ranges_dispatch(tmp_path: Path) -> None:
    builtin = load_ranges("builtin")
    assert isinstance(builtin, RangeFile) and load_ranges("builtin") is builtin
    path = tmp_path / "ranges.txt"
    path.write_text("\n".join(range_lines(LEAKED)), encoding="ascii")
    assert isinstance(load_ranges(str(path)), RangeFile)
    assert isinstance(load_ranges(str(tmp_path)), RangeDirectory)
    api = load_ranges("https://api.pwnedpasswords.com/")
    assert isinstance(api, RangeApi) and api.base_url == "https://api.pwnedpasswords.com"
    assert isinstance(load_ranges("http://127.0.0.1:9"), RangeApi)
    for bad in (str(tmp_path / "missing.txt"), "ftp://example.com/ranges", ""):
        with pytest.raises(ValueError, match="neither 'builtin', an http"):
            load_ranges(bad)


# -- PasswordHasher -------------------------------------------------------------------------------


def test_default_policy_hash_is_argon2id_with_its_parameters() -> None:
    stored = PasswordHasher(POLICY).hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    parameters = extract_parameters(stored)
    assert (parameters.salt_len, parameters.hash_len) == (16, 32)
    assert PasswordHasher(POLICY).verify(stored, "correct horse battery staple")


def test_verify_matches_and_mismatches() -> None:
    hasher = PasswordHasher(CHEAP)
    stored = hasher.hash("sakura-sakura-2024")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert stored != hasher.hash("sakura-sakura-2024")  # fresh salt each time
    assert hasher.verify(stored, "sakura-sakura-2024")
    assert not hasher.verify(stored, "sakura-sakura-2025")
    assert not hasher.verify(stored, "")


def test_verify_uses_nfkc() -> None:
    hasher = PasswordHasher(CHEAP)
    assert hasher.verify(hasher.hash("ｐａｓｓ　１２３４５６７８"), "pass 12345678")
    assert hasher.verify(hasher.hash("cafe\u0301 au lait!"), "caf\u00e9 au lait!")


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "$2b$12$abcdefghijklmnopqrstuuOd0Th6xfA8R5b0ZZ7mfzRPO7T8pK3q",  # bcrypt
        "$argon2id$v=19$m=65536,t=3,p=4$AAAA$BBBB",
        "$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHQ$aGFzaA",
    ],
)
def test_malformed_stored_hash_is_false_not_an_error(stored: str) -> None:
    hasher = PasswordHasher(CHEAP)
    assert hasher.verify(stored, "anything at all") is False
    assert hasher.needs_rehash(stored) is True


def test_truncated_hash_is_false() -> None:
    hasher = PasswordHasher(CHEAP)
    assert hasher.verify(hasher.hash("sakura-sakura-2024")[:-6], "sakura-sakura-2024") is False


def test_needs_rehash_when_the_policy_grows() -> None:
    cheap_hash = PasswordHasher(CHEAP).hash("sakura-sakura-2024")
    assert not PasswordHasher(CHEAP).needs_rehash(cheap_hash)
    assert PasswordHasher(POLICY).needs_rehash(cheap_hash)
    assert PasswordHasher(PasswordPolicy(time_cost=2, memory_cost=8192, parallelism=1)).needs_rehash(cheap_hash)
    assert PasswordHasher(POLICY).verify(cheap_hash, "sakura-sakura-2024")  # still verifies until rehashed
