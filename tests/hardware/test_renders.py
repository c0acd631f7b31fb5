"""Every rendering the wallet ships decodes back to exactly the code, with the real decoders."""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pyzbar import pyzbar

from protocol import PaymentCode, mint_code
from wallet_app.render import SCREEN_SIZE, render_code128, render_phone_screen, render_qr, save_png

RNG = random.Random(2019)
# Device numbers full of 9s put "99" digit pairs where Code 128's set C packs them.
DEVICE_CHOICES = (1, 99, 9_999_999, 9_900_099, 1_999_999, 990_099)


def sample_codes(count: int) -> list[PaymentCode]:
    codes = []
    for index in range(count):
        secret = RNG.randbytes(32)
        device = RNG.choice([*DEVICE_CHOICES, RNG.randrange(1, 10_000_000), RNG.randrange(1, 10_000_000)])
        minted = RNG.choice(
            [1_799_999_999, 1_999_990_000 + RNG.randrange(0, 9_999), RNG.randrange(1_700_000_000, 2**31)]
        )
        codes.append(mint_code(secret, device, minted, index % 10))
    return codes


CODES = sample_codes(60)


def zxing_texts(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(np.asarray(image.convert("L")))]


def pyzbar_texts(image: Image.Image) -> list[str]:
    return [symbol.data.decode() for symbol in pyzbar.decode(image.convert("L"))]


def has_set_c_99(text: str) -> bool:
    """A "99" on an even offset: one of the digit pairs Code 128 set C encodes as one codeword."""
    return any(text[i : i + 2] == "99" for i in range(0, len(text) - 1, 2))


def test_the_sample_holds_99_pairs_in_both_forms() -> None:
    """python-barcode 0.16.1 loses a "99" pair: the sample must hold numbers that would expose such a bug."""
    assert sum(has_set_c_99(code.numeric) for code in CODES) >= 15
    assert sum(has_set_c_99(code.qr) for code in CODES) >= 15


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.numeric)
def test_qr_round_trips_through_zxing_and_pyzbar(code: PaymentCode) -> None:
    image = render_qr(code.qr, box_size=2 + int(code.qr[-2]) % 9)
    assert zxing_texts(image) == [code.qr]
    assert pyzbar_texts(image) == [code.qr]


@pytest.mark.parametrize("code", CODES, ids=lambda code: code.numeric)
def test_code128_round_trips_through_zxing_and_pyzbar(code: PaymentCode) -> None:
    image = render_code128(code.numeric, module_px=2 + int(code.numeric[-2]) % 3)
    assert zxing_texts(image) == [code.numeric]
    assert pyzbar_texts(image) == [code.numeric]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=string.digits, min_size=1, max_size=40), st.sampled_from(["", "99", "9999"]))
def test_code128_round_trips_any_digit_string(digits: str, prefix: str) -> None:
    """Odd and even lengths, leading "99" pairs included: the writer never drops or reorders a digit."""
    text = prefix + digits
    image = render_code128(text, module_px=2, height=40)
    assert zxing_texts(image) == [text]
    assert pyzbar_texts(image) == [text]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " -./:", min_size=1, max_size=30))
def test_code128_round_trips_printable_ascii(text: str) -> None:
    assert zxing_texts(render_code128(text, module_px=2, height=40)) == [text]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=string.digits, min_size=1, max_size=48))
def test_qr_round_trips_any_digit_string_up_to_its_version_limit(digits: str) -> None:
    assert zxing_texts(render_qr(digits, box_size=3)) == [digits]


def test_qr_form_is_version_2_and_numeric_form_version_1() -> None:
    """Version 2 is 25 modules a side, version 1 is 21: the sizes with no quiet zone, one pixel a module."""
    for code in CODES:
        assert render_qr(code.qr, box_size=1, border=0).size == (25, 25)
        assert render_qr(code.numeric, box_size=1, border=0).size == (21, 21)
    assert render_qr(CODES[0].qr, box_size=10).size == (330, 330)  # (25 + 2 × 4 quiet modules) × 10


@pytest.mark.parametrize("text", ["9" * 120, "x" * 80, "9" * 8000])
def test_qr_refuses_anything_above_version_3(text: str) -> None:
    with pytest.raises(ValueError, match="version"):
        render_qr(text)


@pytest.mark.parametrize("text", ["", "caf\u00e9"])
def test_code128_refuses_empty_or_non_ascii_text(text: str) -> None:
    with pytest.raises(ValueError, match="ASCII"):
        render_code128(text)


def test_phone_screen_carries_both_renderings_and_a_bezel() -> None:
    code = mint_code(b"k" * 32, 9_900_099, 1_795_000_000, 9)
    screen = render_phone_screen(code, "Hanako's wallet", 42)
    assert screen.size == SCREEN_SIZE and screen.mode == "RGB"
    assert set(zxing_texts(screen)) == {code.qr, code.numeric}
    assert set(pyzbar_texts(screen)) == {code.qr, code.numeric}
    pixels = np.asarray(screen)
    assert pixels[2, 2].max() < 40 and pixels[-3, -3].max() < 40  # dark bezel at the corners
    assert pixels[SCREEN_SIZE[1] // 2, 30].min() > 240  # white screen beside the code


def test_phone_screen_shows_the_countdown_and_is_deterministic() -> None:
    code = CODES[0]
    first = np.asarray(render_phone_screen(code, "Hanako's wallet", 42))
    assert np.array_equal(first, np.asarray(render_phone_screen(code, "Hanako's wallet", 42)))
    later = np.asarray(render_phone_screen(code, "Hanako's wallet", 41))
    changed_rows = np.flatnonzero((first != later).any(axis=(1, 2)))
    assert changed_rows.size > 0
    assert changed_rows.min() > 810 and changed_rows.max() < 860  # only the "expires in N s" line changed


def test_a_long_wallet_name_is_fitted_inside_the_screen() -> None:
    code = CODES[1]
    screen = render_phone_screen(code, "An extraordinarily long wallet name that cannot fit " * 3, 30)
    header = np.asarray(screen)[60:131]
    bezel_columns = np.r_[0:14, SCREEN_SIZE[0] - 13 : SCREEN_SIZE[0]]
    assert header[:, bezel_columns].max() < 40  # no white text spilled onto the bezel
    assert set(zxing_texts(screen)) == {code.qr, code.numeric}


def test_save_png_writes_a_lossless_file(tmp_path: Path) -> None:
    code = CODES[2]
    screen = render_phone_screen(code, "Hanako's wallet", 12)
    path = save_png(screen, tmp_path / "nested" / "screen.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as reopened:
        assert np.array_equal(np.asarray(reopened.convert("RGB")), np.asarray(screen))
