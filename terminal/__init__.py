"""The register: the payment client, the till, the local journal and the Textual app (``terminal.register``)."""

from terminal.client import FINAL_STATUSES, PaymentClient, PaymentOutcome

__all__ = ["FINAL_STATUSES", "PaymentClient", "PaymentOutcome"]
