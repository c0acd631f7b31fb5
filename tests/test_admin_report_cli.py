"""``possim admin victims | compensate | sweep | report`` as an operator runs them, on a store an incident
was built in (tests/core/test_incident_report.py). The commands run on the real clock, so the incident's
clock starts a week ago."""

from __future__ import annotations

import getpass
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from payment_core.core import Core
from payment_core.incident_report import build_report
from payment_core.models import AuditEvent
from payment_core.server import ServerThread
from possim.cli import main
from protocol import ManualClock, system_clock
from tests.core.test_incident_report import Incident, build_incident
from tests.support import SignedCaller, fund_wallet
from wallet_app.minter import CodeMinter

pytestmark = pytest.mark.cheap_hashing  # the incident signs in many times


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(system_clock().replace(microsecond=0) - timedelta(days=7))


def store_args(core: Core, tmp_path: Path) -> list[str]:
    key_file = tmp_path / "server.key"
    key_file.write_text(core.config.server_key.hex())
    key_file.chmod(0o600)
    args = ["--db", core.config.db_url, "--key-file", str(key_file)]
    return args + (["--db-schema", core.config.db_schema] if core.config.db_schema else [])


@pytest.fixture
def incident(core: Core, server: ServerThread, clock: ManualClock) -> Incident:
    return build_incident(core, clock, server.url)


def test_victims_and_the_report_from_the_command_line(
    core: Core, incident: Incident, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_args(core, tmp_path)
    assert main(["admin", *store, "victims", "--json"]) == 0
    victims = json.loads(capsys.readouterr().out)["victims"]
    assert [(v["account_id"], v["yen_lost"], v["yen_outstanding"]) for v in victims] == [
        (incident.owners[0], 5_000, 0),
        (incident.owners[1], 3_000, 3_000),
    ]
    assert main(["admin", *store, "victims"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("2 suspected victims, 8,000 yen lost\n")
    assert "from 127.91.0.5 (range 127.91.0.0/24, new to the account; now active)" in text
    assert "risk: high_risk_goods (decline)" not in text  # refused payments are listed apart
    assert "refused 6,000 yen at Ikebukuro (risk_declined)" in text

    since, until = incident.started - timedelta(minutes=5), incident.ended + timedelta(minutes=5)
    window = ["--since", since.isoformat(), "--until", until.isoformat()]
    chart = tmp_path / "incident.png"
    assert main(["admin", *store, "report", *window, "--json", "--plot", str(chart)]) == 0
    report = json.loads(capsys.readouterr().out)
    with core.read() as session:
        direct = build_report(session, since, until)
    assert report == direct | {"plot": str(chart)}
    assert report["yen_lost"] == 8_000 and report["victims"] == 2 and report["yen_compensated"] == 5_000
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 10_000
    naive = ["--since", since.replace(tzinfo=None).isoformat(timespec="seconds"), "--until", until.isoformat()]
    assert main(["admin", *store, "report", *naive]) == 0  # a time without a zone is UTC
    text = capsys.readouterr().out
    assert "yen lost           8,000" in text and "victims            2" in text
    assert "admin.pause payments by admin:test" in text


def test_compensating_from_the_command_line_pays_once_and_keeps_the_books(
    core: Core, incident: Incident, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = store_args(core, tmp_path)
    victim = str(incident.owners[1])
    paying = ["admin", *store, "compensate", victim, "--amount", "3000", "--id", "inc-owner1", "--reason", "takeover"]
    assert main(paying) == 0
    assert capsys.readouterr().out.startswith(f"inc-owner1: paid 3,000 yen to account {victim} (")
    assert main([*paying, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["replayed"] is True
    assert main(["admin", *store, "compensate", victim, "--amount", "2000", "--id", "inc-owner1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("possim admin compensate: idempotency_conflict: ") and err.count("\n") == 1
    with core.read() as session:
        actors = session.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.action == "compensation", AuditEvent.target == f"account:{victim}"
            )
        ).all()
    assert actors == [f"admin:{getpass.getuser()}"] * 2  # the payment and the refused conflict
    assert main(["admin", *store, "victims", "--json"]) == 0
    assert all(v["yen_outstanding"] == 0 for v in json.loads(capsys.readouterr().out)["victims"])
    assert main(["admin", *store, "audit", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audit"] == "balanced"


def test_sweep_from_the_command_line(
    core: Core, terminal: SignedCaller, minter: CodeMinter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fund_wallet(terminal, minter, 50_000)
    waiting = terminal.pay("cli-sweep", 12_000, minter.mint().numeric).json()
    assert waiting["status"] == "awaiting_customer"
    store = store_args(core, tmp_path)
    assert main(["admin", *store, "sweep", "--json"]) == 0  # the real clock is days past its window
    assert json.loads(capsys.readouterr().out) == {"closed": [waiting["id"]]}
    assert main(["admin", *store, "sweep"]) == 0
    assert capsys.readouterr().out == "closed 0 payments nobody confirmed in time\n"
    assert terminal.call("GET", "/v1/orders/cli-sweep").json()["decline_code"] == "confirmation_expired"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--since", "yesterday"], "possim admin report: --since: not an ISO 8601 time: 'yesterday'"),
        (
            ["report", "--since", "2019-07-03T09:00", "--until", "2019-07-03T08:00"],
            "possim admin report: --until must be after --since",
        ),
        (
            ["report", "--since", "2019-07-03T09:00", "--plot", "chart.txt"],
            "possim admin report: --plot: the chart is a PNG; name it FILE.png, not 'chart.txt'",
        ),
        (["victims", "--until", "soon"], "possim admin victims: --until: not an ISO 8601 time: 'soon'"),
        (
            ["compensate", "1", "--amount", "0", "--id", "inc-1"],
            "possim admin compensate: amount_invalid: Amounts are whole yen above zero.",
        ),
        (
            ["compensate", "999", "--amount", "10", "--id", "inc-1"],
            "possim admin compensate: resource_missing: No such account.",
        ),
        (
            ["compensate", "1", "--amount", "10", "--id", "no spaces"],
            "possim admin compensate: parameter_invalid: A compensation",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    core: Core, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["admin", *store_args(core, tmp_path), *args]) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err
