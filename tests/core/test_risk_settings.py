"""The risk rules' settings: one file of defaults shipped with the core, an operator's file over it, and a
clear one-line refusal for anything that would silently leave a rule at its default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from payment_core.risk import RiskSettingsError, Verdict, load_settings
from payment_core.risk.settings import DEFAULTS_FILE

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_file_holds_every_default() -> None:
    settings = load_settings()
    assert settings.topup_then_spend.action == Verdict.DECLINE
    assert settings.velocity.account_per_minute == 4
    assert settings.high_risk_goods.categories == ("tobacco", "gift_card")
    assert settings.new_device.added_after_account_hours == 24
    assert "[store_cluster]" in DEFAULTS_FILE.read_text(encoding="utf-8")


def test_an_operators_file_changes_only_what_it_names(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text('[velocity]\naccount_per_minute = 9\naction = "decline"\n', encoding="utf-8")
    settings = load_settings(path)
    assert settings.velocity.account_per_minute == 9 and settings.velocity.action == Verdict.DECLINE
    assert settings.velocity.account_per_hour == load_settings().velocity.account_per_hour
    assert settings.topup_then_spend == load_settings().topup_then_spend


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[velocty]\naccount_per_minute = 9\n", "there is no rule [velocty]"),
        ("[velocity]\naccount_per_minit = 9\n", "[velocity] has no setting 'account_per_minit'"),
        ('[velocity]\naction = "block"\n', "unknown action 'block'"),
        ('[velocity]\naccount_per_minute = "nine"\n', "[velocity] account_per_minute = 'nine' is not a whole number"),
        ("[velocity]\naccount_per_minute = -1\n", "is not a whole number >= 0"),
        ('[high_risk_goods]\ncategories = "tobacco"\n', "is not a tuple[str, ...]"),
        ("[velocity]\nenabled = 1\n", "[velocity] enabled = 1 is not a bool"),
        ("velocity = 3\n", "[velocity] must be a table"),
        ("[velocity\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_refused_with_what_is_wrong(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RiskSettingsError) as refused:
        load_settings(path)
    assert said in str(refused.value)


def test_core_serve_refuses_a_bad_file_in_one_line_before_serving(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    path.write_text('[velocity]\naction = "block"\n', encoding="utf-8")
    command = [sys.executable, "-m", "possim", "core", "serve", "--db", str(tmp_path / "core.db")]
    command += ["--key-file", str(tmp_path / "server.key"), "--risk-config", str(path), "--port", "0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == "possim core: unknown action 'block': use allow, step_up, decline or freeze"
    assert not (tmp_path / "core.db").exists()  # refused before anything was made
    missing = [*command[:-4], "--risk-config", str(tmp_path / "nowhere.toml")]
    done = subprocess.run(missing, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "cannot read the risk settings" in done.stderr
    assert "Traceback" not in done.stderr
