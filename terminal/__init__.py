"""The register: the payment client (and, later, the Textual app)."""

from terminal.client import PaymentClient, PaymentOutcome

__all__ = ["PaymentClient", "PaymentOutcome"]
