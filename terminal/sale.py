"""The cart of one sale: lines, voids, totals, age check and the consumption tax per rate.

Prices are tax-included (総額表示). The tax shown on the receipt follows the qualified-invoice rule
(インボイス制度, from October 2023): the tax is computed once per rate on the receipt's total at that
rate and fractions of a yen are rounded down, never line by line. Integer arithmetic only.
"""

from __future__ import annotations

from dataclasses import dataclass

from terminal.catalog import Product

MAX_QUANTITY = 99
MAX_LINES = 200
TAX_ORDER = (10, 8, 0)
"""Receipt order of the tax rates: standard, reduced (軽減税率), non-taxable (非課税)."""
REDUCED_RATE = 8
TAX_ROUNDING_NOTE = (
    "消費税は税率ごとの合計から算出し、1円未満切捨て (tax per rate on the receipt total, fractions rounded down)"
)


class SaleError(Exception):
    """A cart operation the register refuses; the message can be shown to the clerk as is."""


@dataclass
class SaleLine:
    product: Product
    quantity: int
    voided: bool = False

    @property
    def amount(self) -> int:
        """Tax-included amount of the line; a voided line counts for nothing."""
        return 0 if self.voided else self.product.price * self.quantity


@dataclass(frozen=True)
class TaxBucket:
    rate: int
    taxable: int
    """Tax-included total at this rate (対象額)."""
    tax: int
    """Consumption tax included in ``taxable`` (内消費税), rounded down once."""


def included_tax(taxable: int, rate: int) -> int:
    """Tax contained in a tax-included amount: floor(taxable * rate / (100 + rate)), sign kept for refunds."""
    if taxable < 0:
        return -included_tax(-taxable, rate)
    return taxable * rate // (100 + rate)


def tax_breakdown(lines: tuple[SaleLine, ...] | list[SaleLine]) -> list[TaxBucket]:
    """One bucket per rate present among the active lines, in the order 10, 8, 0."""
    taxable: dict[int, int] = {}
    for line in lines:
        if not line.voided:
            rate = line.product.tax_rate
            taxable[rate] = taxable.get(rate, 0) + line.amount
    unknown = set(taxable) - set(TAX_ORDER)
    if unknown:
        raise SaleError(f"unknown tax rate {sorted(unknown)}")
    return [TaxBucket(rate, taxable[rate], included_tax(taxable[rate], rate)) for rate in TAX_ORDER if rate in taxable]


def _check_quantity(quantity: int) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise SaleError(f"数量は1から{MAX_QUANTITY}までです (quantity must be 1 to {MAX_QUANTITY}, got {quantity!r})")
    return quantity


class Sale:
    """The lines rung up for one customer. Voided lines stay (the receipt prints them as 取消)."""

    def __init__(self) -> None:
        self._lines: list[SaleLine] = []
        self.age_confirmed = False
        """Set by the register once the customer has confirmed being 20 or over on the screen."""

    def add(self, product: Product, quantity: int = 1) -> int:
        """Ring up ``product``; returns the index of the line it landed on.

        Scanning the same product again as the last live line adds to that line's quantity, as a real
        till does; anything else opens a new line.
        """
        _check_quantity(quantity)
        last = self._last_active_index()
        if last is not None and self._lines[last].product == product:
            line = self._lines[last]
            if line.quantity + quantity > MAX_QUANTITY:
                raise SaleError(
                    f"数量は{MAX_QUANTITY}までです (line {last + 1} would hold {line.quantity + quantity} × {product.name})"
                )
            line.quantity += quantity
            return last
        if len(self._lines) >= MAX_LINES:
            raise SaleError(f"1取引{MAX_LINES}行までです (a sale holds at most {MAX_LINES} lines)")
        self._lines.append(SaleLine(product, quantity))
        return len(self._lines) - 1

    def set_quantity(self, index: int, quantity: int) -> None:
        _check_quantity(quantity)
        self._active_line(index).quantity = quantity

    def void_line(self, index: int) -> None:
        """Cancel one line (取消); it stays on the receipt with no amount."""
        self._active_line(index).voided = True

    def void_all(self) -> None:
        """Cancel every line (取引中止)."""
        for line in self._lines:
            line.voided = True

    @property
    def lines(self) -> tuple[SaleLine, ...]:
        """Every line, voided ones included, in the order rung up."""
        return tuple(self._lines)

    @property
    def active_lines(self) -> tuple[SaleLine, ...]:
        return tuple(line for line in self._lines if not line.voided)

    @property
    def total(self) -> int:
        return sum(line.amount for line in self._lines)

    @property
    def item_count(self) -> int:
        """Number of items (点数): quantities of the live lines added up."""
        return sum(line.quantity for line in self._lines if not line.voided)

    @property
    def is_empty(self) -> bool:
        return not any(not line.voided for line in self._lines)

    @property
    def needs_age_check(self) -> bool:
        """True while a live line is alcohol or tobacco (sold only to customers aged 20 or over)."""
        return any(line.product.age_restricted for line in self._lines if not line.voided)

    @property
    def age_check_pending(self) -> bool:
        """An age-restricted item is in the cart and the customer has not confirmed yet."""
        return self.needs_age_check and not self.age_confirmed

    def tax_breakdown(self) -> list[TaxBucket]:
        return tax_breakdown(self._lines)

    def _last_active_index(self) -> int | None:
        for index in range(len(self._lines) - 1, -1, -1):
            if not self._lines[index].voided:
                return index
        return None

    def _active_line(self, index: int) -> SaleLine:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self._lines):
            raise SaleError(f"その行はありません (no line at index {index!r})")
        line = self._lines[index]
        if line.voided:
            raise SaleError(f"取消済みの行です (line {index + 1} is already voided)")
        return line
