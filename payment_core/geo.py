"""Which country an address is in (``fixtures/geo/address-countries.csv``: a simulator's map in which
127.x.y.z aliases stand for addresses abroad). The longest matching network wins; an address in no
listed network, or no address at all, is ``UNKNOWN_COUNTRY``."""

from __future__ import annotations

import csv
import ipaddress
from functools import lru_cache
from pathlib import Path

BUILTIN_MAP = Path(__file__).resolve().parents[1] / "fixtures" / "geo" / "address-countries.csv"
UNKNOWN_COUNTRY = "ZZ"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4)
def _load(path: Path) -> tuple[tuple[Network, str], ...]:
    with path.open(encoding="utf-8") as file:
        rows = csv.DictReader(line for line in file if not line.startswith("#"))
        networks = [(ipaddress.ip_network(row["network"].strip()), row["country"].strip().upper()) for row in rows]
    return tuple(sorted(networks, key=lambda entry: entry[0].prefixlen, reverse=True))


def country_of(address: str, path: Path = BUILTIN_MAP) -> str:
    """The country of ``address`` (an address, or a network such as a throttle key's IPv6 /64)."""
    try:
        network = ipaddress.ip_network(address.strip().strip("[]"), strict=False)
    except ValueError:
        return UNKNOWN_COUNTRY
    for listed, country in _load(path):
        if network.version == listed.version and network.subnet_of(listed):  # type: ignore[arg-type]
            return country
    return UNKNOWN_COUNTRY


def countries(path: Path = BUILTIN_MAP) -> frozenset[str]:
    """Every country the map names."""
    return frozenset(country for _network, country in _load(path))
