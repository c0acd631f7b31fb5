"""An attack replay in words (one run, or two side by side) and as a chart: cumulative yen lost and sign-in
attempts over time, one line per run (matplotlib's Agg canvas, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_MONEY_AND_CUSTOMERS = (
    ("yen lost", "yen_lost"),
    ("top-ups credited to thieves", "topups_credited"),
    ("top-ups blocked", "topups_blocked"),
    ("payments declined by risk", "payments_declined_by_risk"),
    ("legit payments", "legit_payments"),
    ("legit payments declined", "legit_payments_declined"),
    ("legit decline rate", "legit_decline_rate"),
    ("detected at (s)", "detected_at_s"),
    ("contained at (s)", "contained_at_s"),
    ("duration (s)", "duration_s"),
)
CARD_ROWS = (
    ("security codes tried", "card_code_attempts"),
    ("cards tried", "cards_tried"),
    ("cards linked by the thief", "cards_linked"),
    ("cards blocked for testing", "cards_blocked"),
    *_MONEY_AND_CUSTOMERS,
)
ROWS = (
    ("login attempts", "login_attempts"),
    ("password checks", "sign_ins_reaching_a_password"),
    ("reset codes mailed to the thief", "reset_codes_mailed_elsewhere"),
    ("accounts taken over", "accounts_taken_over"),
    ("victims", "victims"),
    *_MONEY_AND_CUSTOMERS,
)


def _cell(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2%}" if value < 1 and value != 0 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def side_by_side(runs: list[dict[str, Any]]) -> list[str]:
    """The runs' figures in columns, then what each core was."""
    first = runs[0]
    rows = CARD_ROWS if first["scenario"] == "card-testing" else ROWS
    width = max(len(label) for label, _ in rows) + 2
    columns = [f"{run['defenses']}{' + operator' if 'operator' in run else ''}" for run in runs]
    if first["scenario"] == "card-testing":
        title = f"card testing, seed {first['seed']}: up to {first['attempts_planned']:,} security codes"
    else:
        title = (
            f"credential stuffing, seed {first['seed']}: {first['accounts']:,} accounts, "
            f"{first['attempts_planned']:,} list entries ({first['list_hits']:,} right passwords)"
        )
    lines = [title, "".ljust(width) + "".join(name.rjust(18) for name in columns)]
    for label, key in rows:
        cells = [_cell(run.get(key)) if key != "legit_decline_rate" else f"{run[key]:.2%}" for run in runs]
        lines.append(label.ljust(width) + "".join(cell.rjust(18) for cell in cells))
    for run, name in zip(runs, columns, strict=True):
        lines.append(f"{name}: " + "; ".join(run["core"]))
        if run.get("cut_short"):
            lines.append(f"{name}: stopped at the time bound before the list was done")
        for action in run.get("operator", {}).get("actions", []):
            lines.append(f"{name}: operator at {action['at_s']} s: {action['action']} ({action['status']})")
    return lines


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Cumulative yen lost (left) and sign-in attempts (right) against seconds, one line per run."""
    figure = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(figure)
    lost, tried = figure.subplots(1, 2)
    for run in runs:
        label = run["defenses"] + (" + operator" if "operator" in run else "")
        timeline = run["timeline"]
        lost.plot(range(len(timeline["yen_lost"])), timeline["yen_lost"], label=label)
        tried.plot(range(len(timeline["attempts"])), timeline["attempts"], label=label)
    lost.set(title="yen lost (cumulative)", xlabel="seconds into the attack", ylabel="yen")
    what = "security codes tried" if runs[0]["scenario"] == "card-testing" else "sign-in attempts"
    tried.set(title=f"{what} (cumulative)", xlabel="seconds into the attack", ylabel="attempts")
    for axes in (lost, tried):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
