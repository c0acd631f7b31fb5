"""The seeded world of an attack replay: the customers, their passwords and homes, the attacker's leaked
list and addresses, the stores. The same seed gives the same world, on either core.

Customers' passwords come from a pool of distinct ones, so seeding hashes each distinct password once
(argon2id at 64 MiB takes about 0.1 s a hash here; 20,000 would take half an hour). Customers who share a
password share its stored hash (salt included): a seeding shortcut a real store would not take, which
changes nothing a sign-in can see.

The list holds every customer who re-used a password that leaked (the hits), other customers with an old
password (stale: the reset door's prey on a core as 7pay was), and, for the most part, addresses that
have no account here, shuffled.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DISTINCT_PASSWORDS = 256
LEGIT_SHOPPERS = 200
LEGIT_STORES = 6
COLLUDING_STORES = 2
REGISTERS_PER_STORE = 2


@dataclass(frozen=True)
class Scenario:
    accounts: int = 20_000
    attempts: int = 200_000
    seed: int = 7
    reused_share: float = 0.02  # customers whose password is in the leaked list, right
    stale_share: float = 0.05  # customers in the list with a password they no longer use
    attacker_addresses: int = 1_000
    sign_in_workers: int = 8
    # the pace of 7pay's reset door (reset_door.py): a reset asked for a wrong-password entry costs the core
    # about what a sign-in does, so the attacker spends a bounded share of its requests there (0: no bound)
    reset_asks_per_second: float = 25.0
    max_seconds: float = 600.0
    core_workers: int = 1  # `possim core serve --workers N`

    def __post_init__(self) -> None:
        if self.accounts < 10 or self.attempts < 10:
            raise ValueError("an attack needs at least 10 accounts and 10 attempts")


@dataclass(frozen=True)
class Customer:
    index: int
    email: str
    password: str
    home: str  # the address the owner signs in and pays from
    balance: int


@dataclass(frozen=True)
class ListEntry:
    email: str
    password: str
    customer: int | None  # the customer it names, if any


@dataclass(frozen=True)
class World:
    scenario: Scenario
    customers: list[Customer]
    leaked: list[ListEntry]
    attacker_addresses: list[str]
    shoppers: list[int]  # the customers who shop during the attack

    @property
    def hits(self) -> int:
        return sum(1 for entry in self.leaked if entry.customer is not None and self._right(entry))

    @property
    def stale(self) -> int:
        """Entries naming a customer with a password they no longer use: 7pay's reset door takes these."""
        return sum(1 for entry in self.leaked if entry.customer is not None and not self._right(entry))

    def _right(self, entry: ListEntry) -> bool:
        return entry.customer is not None and self.customers[entry.customer].password == entry.password


def customer_home(index: int) -> str:
    """A home in Japan by the address fixture (127.210.0.0 and up)."""
    return f"127.{210 + (index >> 16) % 40}.{(index >> 8) & 255}.{(index & 255) or 1}"


def attacker_address(index: int) -> str:
    """Four in ten from proxies in Japan (127.90/16), the rest abroad (China 127.144/12, Russia 127.160/12):
    a few addresses per /24, as a proxy pool gives."""
    first = (90, 144, 160, 90, 145, 161, 90, 146, 162, 90)[index % 10]
    return f"127.{first}.{(index // 10) % 250}.{1 + index % 10 + 10 * ((index // 2500) % 25)}"


def build_world(scenario: Scenario) -> World:
    rng = random.Random(scenario.seed)
    distinct = max(8, min(DISTINCT_PASSWORDS, scenario.accounts // 20))
    pool = [f"pw-{rng.getrandbits(64):016x}-{n}" for n in range(distinct)]
    customers = [
        Customer(
            index,
            f"customer{index:06d}@example.jp",
            rng.choice(pool),
            customer_home(index),
            rng.randrange(5, 31) * 1_000,
        )
        for index in range(scenario.accounts)
    ]
    order = list(range(scenario.accounts))
    rng.shuffle(order)
    reused = order[: max(1, round(scenario.accounts * scenario.reused_share))]
    stale = order[len(reused) : len(reused) + round(scenario.accounts * scenario.stale_share)]
    named = [ListEntry(customers[i].email, customers[i].password, i) for i in reused]
    named += [ListEntry(customers[i].email, f"old-{rng.getrandbits(48):012x}", i) for i in stale]
    named = named[: scenario.attempts]
    strangers = [
        ListEntry(f"leaked{n:07d}@example.net", f"pw-{rng.getrandbits(48):012x}", None)
        for n in range(scenario.attempts - len(named))
    ]
    leaked = named + strangers
    rng.shuffle(leaked)
    shoppers = order[len(reused) + len(stale) :][:LEGIT_SHOPPERS] or order[:LEGIT_SHOPPERS]
    addresses = [attacker_address(n) for n in range(scenario.attacker_addresses)]
    return World(scenario, customers, leaked, addresses, shoppers)


def distinct_passwords(world: World) -> list[str]:
    return sorted({customer.password for customer in world.customers})
