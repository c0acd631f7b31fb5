"""Benchmarks of the camera path: one 1280×720 frame made, and decoded by each decoder (``make bench``)."""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from hardware.decoders import Decoder, OpenCVQRDecoder, PyzbarDecoder, ZxingDecoder, default_decoder
from hardware.virtual_camera import VirtualCamera
from protocol import mint_code
from wallet_app.render import render_phone_screen

CODE = mint_code(b"b" * 32, 4_242, 1_795_000_000, 0)
SCREEN = render_phone_screen(CODE, "bench wallet", 50)
FRAME = VirtualCamera(lambda: SCREEN, seed=3).read()


def test_bench_virtual_camera_frame(benchmark: BenchmarkFixture) -> None:
    camera = VirtualCamera(lambda: SCREEN, seed=4)
    frame = benchmark(camera.read)
    assert frame is not None and frame.shape == (720, 1280, 3)


@pytest.mark.parametrize(
    "decoder", [ZxingDecoder(), PyzbarDecoder(), OpenCVQRDecoder(), default_decoder()], ids=lambda d: d.name
)
def test_bench_decode_frame(benchmark: BenchmarkFixture, decoder: Decoder) -> None:
    assert FRAME is not None
    results = benchmark(decoder.decode, FRAME)
    assert CODE.qr in {result.text for result in results}


def test_bench_render_phone_screen(benchmark: BenchmarkFixture) -> None:
    image = benchmark(render_phone_screen, CODE, "bench wallet", 50)
    assert image.size == (540, 1000)
