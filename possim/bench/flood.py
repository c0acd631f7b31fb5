"""The core section's flood: a sign-in flood against the core while its registers keep paying.

``concurrency`` threads (100) each send ``POST /v1/devices`` (an unknown e-mail address, a wrong
password and code) one after another, every attempt on a new connection bound to a loopback alias of
its own (``127.64.0.0/10``, never an address the registers or the enrolled phones used): the core
accounts a request to its TCP peer, so the per-address throttle never refuses them and each one that is
admitted is a real argon2 check. Meanwhile one more thread polls ``/healthz`` a few times a second and
records how long it took and whether the password budget said ``saturated``.

Bounded in count (``attempts`` sign-ins in all) and in time (``seconds`` after it starts); it stops
when the payments it runs beside are done, whichever comes first. Only 127.0.0.0/8 is ever addressed.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import threading
import time
from collections import Counter
from typing import Any

import httpx

CONCURRENCY = 100
_FIRST_ADDRESS = int(ipaddress.IPv4Address("127.64.0.1"))
_LAST_ADDRESS = int(ipaddress.IPv4Address("127.127.255.254"))
_TIMEOUT_SECONDS = 30.0
_HEALTHZ_EVERY_SECONDS = 0.25
_MAX_POLLS = 100_000  # a bound on the loop; the flood's time bound ends it long before


class Flood:
    """Start with :meth:`start`; :meth:`stop` ends it (joining every thread) and returns its figures."""

    def __init__(self, url: str, attempts: int, seconds: float, concurrency: int = CONCURRENCY) -> None:
        if attempts > _LAST_ADDRESS - _FIRST_ADDRESS:
            raise ValueError("more sign-ins than loopback addresses to send them from")
        self.url = url
        self.attempts = attempts
        self.seconds = seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0  # the next attempt's number (and address offset)
        self._by_status: Counter[str] = Counter()
        self._healthz: list[float] = []
        self._healthz_errors = 0
        self._saturated = False
        self._deadline = math.inf
        self._threads = [threading.Thread(target=self._signins, daemon=True) for _ in range(concurrency)]
        self._threads.append(threading.Thread(target=self._poll, daemon=True))

    def start(self) -> None:
        self._deadline = time.monotonic() + self.seconds
        for thread in self._threads:
            thread.start()

    def stop(self) -> dict[str, Any]:
        """End the flood (if it ever started) and return its figures."""
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout=_TIMEOUT_SECONDS + 5)
        ordered = sorted(self._healthz)
        with self._lock:
            by_status = dict(sorted(self._by_status.items()))
        return {
            "signins": {"sent": sum(by_status.values()), "by_status": by_status},
            "healthz_saturated_seen": self._saturated,
            "healthz_polls": len(ordered),
            "healthz_errors": self._healthz_errors,
            "healthz_p50_ms": _ms(ordered, 0.50),
            "healthz_p99_ms": _ms(ordered, 0.99),
        }

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _take(self) -> int | None:
        """The next attempt's number, or None once ``attempts`` have been taken."""
        with self._lock:
            if self._next >= self.attempts:
                return None
            self._next += 1
            return self._next - 1

    def _signins(self) -> None:
        while self._running():
            number = self._take()
            if number is None:
                return
            address = str(ipaddress.IPv4Address(_FIRST_ADDRESS + number))
            body = {
                "email": f"flood-{secrets.token_hex(6)}@example.jp",
                "password": secrets.token_urlsafe(12),
                "otp": f"{secrets.randbelow(1_000_000):06d}",
                "device_name": "flood",
            }
            # verify=False: plain HTTP on loopback has no TLS, and building a certificate store per attempt
            # cost 23 ms of CPU, so the flood's own client took more of this 2-core machine than the core did
            transport = httpx.HTTPTransport(local_address=address, verify=False)
            try:
                with httpx.Client(base_url=self.url, transport=transport, timeout=_TIMEOUT_SECONDS) as http:
                    status = str(http.post("/v1/devices", json=body).status_code)
            except httpx.HTTPError as error:
                status = f"error:{type(error).__name__}"
            with self._lock:
                self._by_status[status] += 1

    def _poll(self) -> None:
        """Poll until the flood ends, at least once (a short flood on a busy machine may end before this
        thread first runs)."""
        with httpx.Client(base_url=self.url, timeout=_TIMEOUT_SECONDS) as http:
            for _ in range(_MAX_POLLS):
                started = time.perf_counter()
                try:
                    response = http.get("/healthz")
                    work = response.json().get("password_work", {})
                    self._healthz.append(time.perf_counter() - started)
                    self._saturated = self._saturated or bool(work.get("saturated"))
                except (httpx.HTTPError, ValueError, AttributeError):
                    self._healthz_errors += 1
                if not self._running():
                    return
                self._stop.wait(_HEALTHZ_EVERY_SECONDS)


def _ms(ordered: list[float], share: float) -> float | None:
    """Nearest rank, in milliseconds (None with no values)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)] * 1000, 2)
