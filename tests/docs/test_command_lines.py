"""Every ``possim`` command line the README and docs show is one the real parser accepts.

Code blocks are taken as typed (continuation lines joined, environment assignments, comments and pipes
dropped); inline spans are taken when they read as a whole command (no ``...``, ``[``, ``|`` or ``<``
placeholders). A documented command that drifts from the parser fails here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from possim.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_COMMAND = re.compile(r"^(?:[A-Z_]+=\S*\s+)*(?:\S*/)?possim(?:\s|$)")
_INLINE = re.compile(r"`((?:[A-Z_]+=\S*\s+)*(?:\.venv/bin/)?possim [^`]+)`")
_PLACEHOLDERS = ("...", "…", "[", "|", "<")


def _code_lines(text: str) -> list[str]:
    """The lines of fenced and four-space-indented code blocks, continuations joined."""
    lines: list[str] = []
    fenced = False
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced or raw.startswith("    "):
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + raw.strip()
            else:
                lines.append(raw.strip())
    return lines


def _argv(line: str) -> list[str] | None:
    """The arguments after ``possim`` in a shell line, or None when the line runs something else."""
    if not _COMMAND.match(line):
        return None
    words = shlex.split(line, comments=True)
    for cut in ("|", ">", "&&", ";"):
        if cut in words:
            words = words[: words.index(cut)]
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]
    return words[1:]


def documented_commands() -> list[tuple[str, list[str]]]:
    found: list[tuple[str, list[str]]] = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        name = document.relative_to(ROOT).as_posix()
        for line in _code_lines(text):
            argv = _argv(line)
            if argv is not None:
                found.append((f"{name}: {line}", argv))
        for span in _INLINE.findall(text):
            if not any(mark in span for mark in _PLACEHOLDERS):
                argv = _argv(span)
                if argv is not None:
                    found.append((f"{name}: `{span}`", argv))
    return found


COMMANDS = documented_commands()


def test_the_docs_show_the_commands_a_person_runs() -> None:
    """The extractor finds the README's own examples (so an empty list cannot pass the test below)."""
    shown = {" ".join(argv[:2]) for _, argv in COMMANDS}
    assert {"core serve", "wallet web", "demo --headless"} <= shown, sorted(shown)
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_a_documented_command_line_parses(where: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as stopped:
        pytest.fail(f"{where}\n  the parser refused it (exit {stopped.code}): {capsys.readouterr().err.strip()}")


@pytest.mark.parametrize(
    "argv",
    [
        ["wallet", "web", "--core", "http://127.0.0.1:9", "--state", "phone.json", "--port", "8801"],
        ["wallet", "--core", "http://127.0.0.1:9", "--state", "phone.json", "web", "--port", "8801"],
    ],
    ids=["after the action", "before the action"],
)
def test_wallet_options_count_wherever_a_person_writes_them(argv: list[str]) -> None:
    parsed = build_parser().parse_args(argv)
    assert (parsed.action, parsed.core, str(parsed.state), parsed.port) == (
        "web",
        "http://127.0.0.1:9",
        "phone.json",
        8801,
    )


def test_wallet_options_after_the_action_keep_the_defaults_when_absent() -> None:
    parsed = build_parser().parse_args(["wallet", "web"])
    assert parsed.core == "http://127.0.0.1:8700"
    assert parsed.state.name == "wallet.json"
