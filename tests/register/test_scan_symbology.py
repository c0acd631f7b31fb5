"""What the register says a code was read as: the symbology the decoder really read, never what the code looks
like.

A serial scanner sends a line of text and no symbology; the register once passed the line's kind ("product",
"payment") where the symbology belongs, so the payment screen said a JAN was read as "(product)". A typed
code has no symbology either (it was passed as "keyboard", a source). The camera's decoder does know it.
"""

from __future__ import annotations

import serial

from protocol import Symbology
from terminal.catalog import Product
from tests.register.conftest import World
from tests.register.pilot_helpers import open_payment, sign_in, text_of, type_code, wait_for

NOT_A_PAYMENT_CODE = "not a payment code"


def a_product(world: World, digits: int) -> Product:
    """A product anyone may buy, with a JAN of ``digits`` digits (13: EAN-13, 8: EAN-8)."""
    return next(p for p in world.catalog if len(p.jan) == digits and not p.age_restricted and p.price < 2000)


async def test_a_serial_scanners_line_is_read_with_no_symbology_not_its_kind(world: World) -> None:
    goods = a_product(world, 13)
    port = serial.serial_for_url("loop://", timeout=0.1)
    app = world.app(serial_scanner=port)
    try:
        async with app.run_test(size=(140, 42)) as pilot:
            await sign_in(pilot)
            await type_code(pilot, goods.jan)
            await open_payment(pilot)
            port.write(f"{goods.jan}\r\n".encode())  # the clerk scans the goods again instead of the phone
            await wait_for(pilot, lambda: NOT_A_PAYMENT_CODE in text_of(app, "#pay-read"), "the serial read")
            said = text_of(app, "#pay-read")
            assert f"Read {goods.jan} ({Symbology.UNREPORTED}): {NOT_A_PAYMENT_CODE}" in said, said
            assert "(product)" not in said
    finally:
        port.close()


async def test_a_typed_code_is_read_as_keyed(world: World) -> None:
    goods = a_product(world, 13)
    app = world.app()
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, goods.jan)
        await open_payment(pilot)
        await type_code(pilot, goods.jan)
        said = text_of(app, "#pay-read")
        assert f"Read {goods.jan} ({Symbology.KEYED}): {NOT_A_PAYMENT_CODE}" in said, said


async def test_a_camera_read_carries_the_symbology_its_decoder_read(world: World) -> None:
    goods = a_product(world, 13)
    app = world.app(camera=True)
    async with app.run_test(size=(140, 42)) as pilot:
        await sign_in(pilot)
        await type_code(pilot, goods.jan)
        await open_payment(pilot)
        world.stage.show_product(goods.jan)  # the goods under the camera instead of the phone
        await wait_for(pilot, lambda: NOT_A_PAYMENT_CODE in text_of(app, "#pay-read"), "the camera read")
        said = text_of(app, "#pay-read")
        assert f"Read {goods.jan} ({Symbology.EAN13}): {NOT_A_PAYMENT_CODE}" in said, said
