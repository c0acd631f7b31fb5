"""The address-to-country map the risk rules and the country blocks read."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_core.geo import UNKNOWN_COUNTRY, countries, country_of


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("127.0.0.1", "JP"),
        ("127.130.1.1", "US"),  # the longest match wins over 127.0.0.0/8
        ("127.150.0.9", "CN"),
        ("127.192.5.5", "KR"),
        ("::1", "JP"),
        ("8.8.8.8", UNKNOWN_COUNTRY),
        ("2001:db8::/64", UNKNOWN_COUNTRY),
        ("not an address", UNKNOWN_COUNTRY),
        ("", UNKNOWN_COUNTRY),
    ],
)
def test_addresses_map_to_countries(address: str, country: str) -> None:
    assert country_of(address) == country


def test_another_map_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("# a comment\nnetwork,country\n127.0.0.0/16,fr\n", encoding="utf-8")
    assert country_of("127.0.9.9", path) == "FR"
    assert country_of("127.1.0.1", path) == UNKNOWN_COUNTRY
    assert countries(path) == frozenset({"FR"})
    assert {"JP", "US", "CN"} <= countries()
