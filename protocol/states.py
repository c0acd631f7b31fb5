"""The contract's closed sets of words: payment, refund and top-up statuses, what a scan is, and symbologies.

Each is a ``StrEnum``: a member is the very string the core stores and answers (it compares equal to it and
serialises as it), so the database columns and the JSON stay plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    """A payment's status, as the core stores it and answers it (``docs/API.md``)."""

    PROCESSING = "processing"
    """Only inside the transaction that creates the payment, before the code and the money are decided."""
    AWAITING_CUSTOMER = "awaiting_customer"
    """Not final: the phone must approve it (WeChat's USERPAYING); nothing has moved yet."""
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    """Final; ``decline_code`` says why."""
    REVERSED = "reversed"
    """Final: closed by the terminal (refunded in full if it had succeeded, or closed with nothing moved)."""
    REFUNDED = "refunded"
    """Final: refunds have given back the whole amount."""


class RefundStatus(StrEnum):
    """A refund's status: a refund is stored only once its money has moved."""

    SUCCEEDED = "succeeded"


class TopupStatus(StrEnum):
    """A top-up's status, as the core stores it and answers it."""

    PROCESSING = "processing"
    """Only inside the transaction that records the top-up, before it is decided."""
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


class ScanKind(StrEnum):
    """What a code read at the register is: a payment code, a product's JAN/EAN, or neither."""

    PAYMENT = "payment"
    PRODUCT = "product"
    UNKNOWN = "unknown"


class Symbology(StrEnum):
    """How a code reached the register: the barcode symbology a decoder read (the strings ``ScanResult.format``
    carries), or, for text that came without one, where that leaves it."""

    QR = "QRCode"
    CODE128 = "Code128"
    EAN13 = "EAN13"
    """Product barcodes (JAN-13): read only by a register's retail decoder."""
    EAN8 = "EAN8"
    KEYED = "keyed"
    """No symbology: keystrokes into an entry line, typed by a person or by a keyboard-wedge scanner."""
    UNREPORTED = "unreported"
    """A scanner read some barcode but sent only its text (a serial scanner's line)."""
