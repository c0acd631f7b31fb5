"""The risk engine: rules that judge every payment and top-up (and sign-ins: ``signin_attack``) and
answer allow, step up (the customer approves on the phone), decline or freeze, with the reasons kept.
No Textual here: the domain runs without a screen."""

# The submodule ``explain`` first: importing it later would put the module where the function ``explain`` is.
from payment_core.risk import explain as _explain_module  # noqa: F401  (loaded first, on purpose)
from payment_core.risk.engine import Assessment, assess_payment, assess_topup, explain, keep
from payment_core.risk.facts import Finding, PaymentFacts, TopupFacts
from payment_core.risk.settings import BURST_FILE, RiskSettings, RiskSettingsError, Verdict, load_settings

__all__ = [
    "BURST_FILE",
    "Assessment",
    "Finding",
    "PaymentFacts",
    "RiskSettings",
    "RiskSettingsError",
    "TopupFacts",
    "Verdict",
    "assess_payment",
    "assess_topup",
    "explain",
    "keep",
    "load_settings",
]
