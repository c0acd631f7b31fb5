"""The register's product catalog: JAN (EAN-13 / EAN-8) codes, tax-included prices, tax classes.

Loaded from a CSV (``fixtures/catalog/products.csv`` by default, or ``$POSSIM_CATALOG``). Every row is
checked on load and a bad one is refused with the file and line, so a typo in a price or a barcode
never reaches a receipt.
"""

from __future__ import annotations

import csv
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.money import MAX_AMOUNT_YEN

COLUMNS = ("jan", "name", "name_en", "price", "tax_rate", "category", "age_restricted")
TAX_RATES = frozenset({0, 8, 10})
"""10 % standard, 8 % reduced (軽減税率), 0 for non-taxable goods (非課税: gift cards, stamps)."""

CATALOG_ENV = "POSSIM_CATALOG"
DEFAULT_CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "catalog" / "products.csv"

_DIGITS = re.compile(r"[0-9]+")
_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


class CatalogError(Exception):
    """A catalog file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Product:
    jan: str
    name: str
    name_en: str
    price: int
    """Tax-included shelf price in yen."""
    tax_rate: int
    category: str
    age_restricted: bool


def gtin_check_digit(body: str) -> str:
    """The GTIN (EAN/UPC) check digit for ``body``: weights 3, 1, 3, ... from the right, mod 10."""
    total = sum(int(digit) * (3 if i % 2 == 0 else 1) for i, digit in enumerate(reversed(body)))
    return str(-total % 10)


def jan_is_valid(code: str) -> bool:
    """True for an EAN-13 or EAN-8 code (ASCII digits only) ending in its correct check digit."""
    if len(code) not in (8, 13) or not _DIGITS.fullmatch(code):
        return False
    return gtin_check_digit(code[:-1]) == code[-1]


def _normalise(text: str) -> str:
    """Full-width digits and letters, half-width katakana, and case folded for matching."""
    return unicodedata.normalize("NFKC", text).casefold()


class Catalog:
    """Products by JAN, in file order."""

    def __init__(self, products: Iterable[Product], source: str = "<memory>") -> None:
        self.source = source
        self._by_jan: dict[str, Product] = {}
        for product in products:
            if not jan_is_valid(product.jan):
                raise CatalogError(f"{source}: {product.jan!r} is not a valid JAN (EAN-13 or EAN-8)")
            if product.jan in self._by_jan:
                raise CatalogError(f"{source}: duplicate JAN {product.jan}")
            self._by_jan[product.jan] = product
        self._haystacks = [(_normalise(f"{p.name}\n{p.name_en}\n{p.jan}"), p) for p in self._by_jan.values()]

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """Read a UTF-8 CSV (a BOM is tolerated) with the columns in ``COLUMNS``."""
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                products = list(_read_rows(path, handle))
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read catalog: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CatalogError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        except csv.Error as exc:
            raise CatalogError(f"{path}: malformed CSV: {exc}") from exc
        return cls(products, source=str(path))

    @classmethod
    def default(cls) -> Catalog:
        """The file named by ``$POSSIM_CATALOG``, else the bundled ``fixtures/catalog/products.csv``."""
        override = os.environ.get(CATALOG_ENV, "").strip()
        return cls.load(Path(override) if override else DEFAULT_CATALOG)

    def lookup(self, code: str) -> Product | None:
        """The product for a scanned or typed code; a 12-digit UPC-A is read as its EAN-13 (leading 0)."""
        code = unicodedata.normalize("NFKC", code).strip()
        if len(code) == 12 and _DIGITS.fullmatch(code):
            code = "0" + code
        return self._by_jan.get(code)

    def search(self, text: str, limit: int = 10) -> list[Product]:
        """Products whose name, English name or JAN contains ``text`` (case-insensitive), in file order."""
        needle = _normalise(text.strip())
        found: list[Product] = []
        for haystack, product in self._haystacks:
            if len(found) >= limit:
                break
            if needle in haystack:
                found.append(product)
        return found

    def __len__(self) -> int:
        return len(self._by_jan)

    def __iter__(self) -> Iterator[Product]:
        return iter(self._by_jan.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.lookup(code) is not None


def _read_rows(path: Path, handle: Iterable[str]) -> Iterator[Product]:
    reader = csv.DictReader(handle)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise CatalogError(f"{path}, line 1: missing column(s) {', '.join(missing)} (need {', '.join(COLUMNS)})")
    reader.fieldnames = header
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        where = f"{path}, line {line}"
        if None in row or any(row.get(column) is None for column in COLUMNS):
            raise CatalogError(f"{where}: expected {len(header)} fields")
        product = _parse_row(where, {column: (row[column] or "").strip() for column in COLUMNS})
        if product.jan in seen:
            raise CatalogError(f"{where}: duplicate JAN {product.jan} (first on line {seen[product.jan]})")
        seen[product.jan] = line
        yield product


def _parse_row(where: str, row: dict[str, str]) -> Product:
    jan = row["jan"]
    if not jan_is_valid(jan):
        if len(jan) in (8, 13) and _DIGITS.fullmatch(jan):
            expected = gtin_check_digit(jan[:-1])
            raise CatalogError(f"{where}: JAN {jan} has a bad check digit (expected {expected})")
        raise CatalogError(f"{where}: JAN {jan!r} must be 13 or 8 digits")
    for column in ("name", "name_en", "category"):
        if not row[column]:
            raise CatalogError(f"{where}: empty {column}")
    if not _DIGITS.fullmatch(row["price"]):
        raise CatalogError(f"{where}: price {row['price']!r} must be a whole, non-negative number of yen")
    price = int(row["price"])
    if price > MAX_AMOUNT_YEN:
        raise CatalogError(f"{where}: price {price} is above the {MAX_AMOUNT_YEN} yen limit")
    if not _DIGITS.fullmatch(row["tax_rate"]) or int(row["tax_rate"]) not in TAX_RATES:
        raise CatalogError(f"{where}: tax_rate {row['tax_rate']!r} must be one of 0, 8, 10")
    flag = _BOOLS.get(row["age_restricted"].lower())
    if flag is None:
        raise CatalogError(f"{where}: age_restricted {row['age_restricted']!r} must be true or false")
    return Product(
        jan=jan,
        name=row["name"],
        name_en=row["name_en"],
        price=price,
        tax_rate=int(row["tax_rate"]),
        category=row["category"],
        age_restricted=flag,
    )
