"""Package boundaries (docs/ARCHITECTURE.md): what each top-level package may import, and no Textual in the domain."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"protocol", "payment_core", "wallet_app", "hardware", "terminal", "possim"}
# Which of our own packages each package may import (docs/ARCHITECTURE.md, "Packages").
ALLOWED = {
    "protocol": set(),
    "payment_core": {"protocol"},
    "wallet_app": {"protocol"},
    "hardware": {"protocol"},
    "terminal": {"protocol", "hardware"},
    "possim": OURS,
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_design_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    for path in files:
        ours = imported_roots(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {sorted(ours - ALLOWED[package])}"


# The one exception: the httpx side of request signing (an ``httpx.Auth``), which every client shares.
PROTOCOL_LIBRARIES = {"http_auth.py": {"httpx"}}


def test_protocol_uses_the_standard_library_only() -> None:
    for path in sorted((ROOT / "protocol").rglob("*.py")):
        foreign = imported_roots(path) - set(sys.stdlib_module_names) - {"protocol", "__future__"}
        assert foreign <= PROTOCOL_LIBRARIES.get(path.name, set()), f"{path.name} imports {sorted(foreign)}"


def test_protocol_package_loads_without_httpx() -> None:
    """``import protocol`` pulls in nothing beyond the standard library: http_auth is imported on its own."""
    script = "import sys, protocol; print(sorted(m for m in sys.modules if m.split('.')[0] == 'httpx'))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "[]"


def test_domain_packages_never_load_textual() -> None:
    """Importing every module of protocol, payment_core and hardware leaves Textual unloaded."""
    script = (
        "import importlib, pkgutil, sys\n"
        "for name in ('protocol', 'payment_core', 'hardware'):\n"
        "    package = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(package.__path__, name + '.'):\n"
        "        if '.migrations' not in info.name:\n"
        "            importlib.import_module(info.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'textual')\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
