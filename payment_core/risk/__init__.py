"""The risk engine: rules that judge every payment (and, in time, sign-in, enrollment and top-up) and
answer allow, step up (the customer approves on the phone), decline or freeze, with the reasons kept.
No Textual here: the domain runs without a screen."""

from payment_core.risk.engine import Assessment, assess_payment, explain, keep
from payment_core.risk.facts import Finding, PaymentFacts
from payment_core.risk.settings import RiskSettings, RiskSettingsError, Verdict, load_settings

__all__ = [
    "Assessment",
    "Finding",
    "PaymentFacts",
    "RiskSettings",
    "RiskSettingsError",
    "Verdict",
    "assess_payment",
    "explain",
    "keep",
    "load_settings",
]
