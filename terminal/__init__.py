"""The register: the payment client (and, later, the Textual app)."""

from terminal.client import FINAL_STATUSES, PaymentClient, PaymentOutcome
from terminal.signed_http import SignedClient

__all__ = ["FINAL_STATUSES", "PaymentClient", "PaymentOutcome", "SignedClient"]
