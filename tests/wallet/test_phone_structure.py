"""The phone is written the Textual way: its styles in ``.tcss`` files next to the app and the screens (none
inline), one widget per tab of the home screen, and every key binding with an id (so a keymap can move it)
and a description (what the footer says)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import TabPane

from wallet_app.phone import app as phone_app
from wallet_app.phone.app import WalletApp
from wallet_app.phone.screens.home import HomeScreen
from wallet_app.phone.tabs import AlertsTab, DevicesTab, HistoryTab, PayTab, TopUpTab

PHONE = Path(phone_app.__file__).parent


def _phone_classes() -> list[type[DOMNode]]:
    found: list[type[DOMNode]] = []
    for module_info in pkgutil.walk_packages([str(PHONE)], prefix="wallet_app.phone."):
        module = importlib.import_module(module_info.name)
        for _name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, DOMNode) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_no_inline_css_in_the_phone() -> None:
    for path in PHONE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                assigned = {
                    target.id
                    for statement in node.body
                    if isinstance(statement, ast.Assign | ast.AnnAssign)
                    for target in (statement.targets if isinstance(statement, ast.Assign) else [statement.target])
                    if isinstance(target, ast.Name)
                }
                assert not assigned & {"DEFAULT_CSS", "CSS"}, f"{path.name}: {node.name} has inline CSS"


def test_every_css_path_is_a_tcss_file_next_to_its_module() -> None:
    styled = [cls for cls in _phone_classes() if issubclass(cls, App | Screen) and "CSS_PATH" in vars(cls)]
    assert WalletApp in styled and HomeScreen in styled
    for cls in styled:
        css_path = vars(cls)["CSS_PATH"]
        assert isinstance(css_path, str) and css_path.endswith(".tcss")
        assert (Path(inspect.getfile(cls)).parent / css_path).is_file(), f"{cls.__name__}: {css_path}"


def test_every_binding_has_an_id_and_a_description() -> None:
    for cls in _phone_classes():
        for binding in vars(cls).get("BINDINGS", []):
            assert isinstance(binding, Binding), f"{cls.__name__}: {binding!r} is not a Binding"
            assert binding.id and binding.description, f"{cls.__name__}: {binding.key} lacks an id or description"


def test_each_tab_of_the_home_screen_is_a_widget() -> None:
    tabs = [PayTab, HistoryTab, TopUpTab, DevicesTab, AlertsTab]
    assert all(issubclass(tab, TabPane) for tab in tabs)
    assert [tab.TAB_ID for tab in tabs] == ["pay", "history", "topup", "devices", "alerts"]
    assert [tab.TAB_TITLE for tab in tabs] == ["Pay", "History", "Top up", "Devices", "Alerts"]
