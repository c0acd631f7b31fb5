"""``possim core serve`` in a subprocess on a test core's database and key: for tests that kill it, restart it
or serve it by several workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from payment_core.core import Core
from possim.bench.served import free_port, health_answers

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 60.0


def wait_until(condition: Callable[[], bool], seconds: float, message: Callable[[], str]) -> None:
    """Poll ``condition`` until it holds; fail with ``message()`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message()
        time.sleep(0.05)


class ServedCore:
    """``possim core serve ... *extra`` on the core's database (and schema) and key, on a free loopback port,
    answering ``/healthz`` once made."""

    def __init__(self, core: Core, folder: Path, *extra: str) -> None:
        key_file = folder / "server.key"
        if not key_file.exists():
            key_file.write_text(core.config.server_key.hex())
            key_file.chmod(0o600)
        port = str(free_port())
        self.url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "possim", "core", "serve", "--db", core.config.db_url]
        command += ["--db-schema", core.config.db_schema] if core.config.db_schema else []
        command += ["--key-file", str(key_file), "--port", port, "--no-access-log", *extra]
        env = {name: value for name, value in os.environ.items() if name not in ("POSSIM_SERVER_KEY", "POSSIM_DB")}
        env["POSSIM_HOME"] = str(folder / "home")
        self.log = folder / f"core-{port}.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, env=env)
        wait_until(self._answers, START_SECONDS, self.output)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _answers(self) -> bool:
        assert self.process.poll() is None, self.output()
        return health_answers(self.url)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int | None:
        """SIGTERM, as a service manager sends; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.process.returncode
