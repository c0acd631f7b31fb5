"""The tabs of the signed-in phone, one widget each: Pay, History, Top up, Devices and Alerts."""

from wallet_app.phone.tabs.alerts import AlertsTab
from wallet_app.phone.tabs.base import RowsTab, WalletTab
from wallet_app.phone.tabs.devices import DevicesTab
from wallet_app.phone.tabs.history import HistoryTab
from wallet_app.phone.tabs.pay import PayTab
from wallet_app.phone.tabs.topup import TopUpTab

__all__ = ["AlertsTab", "DevicesTab", "HistoryTab", "PayTab", "RowsTab", "TopUpTab", "WalletTab"]
