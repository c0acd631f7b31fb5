"""The catalog: the real fixture file, JAN check digits, lookups, search and refusing bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.catalog import COLUMNS, DEFAULT_CATALOG, Catalog, CatalogError, Product, jan_is_valid

HEADER = ",".join(COLUMNS)
GOOD_ROW = "4901001001071,おにぎり 紅しゃけ,Onigiri salmon,178,8,food,false"


def write_csv(tmp_path: Path, *rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(DEFAULT_CATALOG)


def test_fixture_is_a_realistic_convenience_store(catalog: Catalog) -> None:
    products = list(catalog)
    assert len(catalog) == len(products) >= 45
    assert all(jan_is_valid(p.jan) and p.jan[:2] in ("45", "49") for p in products)
    assert 2 <= sum(len(p.jan) == 8 for p in products) <= 3
    assert {p.tax_rate for p in products} == {0, 8, 10}
    assert sum(p.age_restricted for p in products) >= 6
    for product in products:
        assert product.age_restricted == (product.category in ("alcohol", "tobacco")), product
        assert product.price > 0 and product.name and product.name_en
    by_category = {p.category: p for p in products}
    assert by_category["alcohol"].tax_rate == 10 and by_category["tobacco"].tax_rate == 10
    assert by_category["gift_card"].tax_rate == 0
    assert all(p.tax_rate == 8 for p in products if p.category in ("food", "drink"))
    onigiri = catalog.search("おにぎり", limit=50)
    assert onigiri and all(150 <= p.price <= 200 for p in onigiri)


def test_default_uses_the_fixture_or_the_environment(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSSIM_CATALOG", raising=False)
    assert [p.jan for p in Catalog.default()] == [p.jan for p in catalog]
    monkeypatch.setenv("POSSIM_CATALOG", str(write_csv(tmp_path, GOOD_ROW)))
    assert [p.name for p in Catalog.default()] == ["おにぎり 紅しゃけ"]


@pytest.mark.parametrize("code", ["4006381333931", "4901001001071", "96385074", "49051216"])
def test_valid_jan_codes(code: str) -> None:
    assert jan_is_valid(code)


@pytest.mark.parametrize(
    "code",
    [
        "4006381333932",  # last digit changed
        "4006381339331",  # two digits swapped
        "96385075",
        "036000291452",  # UPC-A is 12 digits: not a JAN as such
        "400638133393",
        "40063813339311",
        "",
        "4006381333 31",
        "４００６３８１３３３９３１",  # full-width digits
        "400638133393a",
    ],
)
def test_invalid_jan_codes(code: str) -> None:
    assert not jan_is_valid(code)


def test_lookup_strips_and_reads_upc_a(catalog: Catalog) -> None:
    salmon = catalog.lookup("4901001001071")
    assert salmon is not None and salmon.name == "おにぎり 紅しゃけ" and salmon.price == 178
    assert catalog.lookup("  4901001001071\n") == salmon
    assert catalog.lookup("49051216") is not None
    assert catalog.lookup("4901001001072") is None
    assert catalog.lookup("") is None
    upc = Product("0036000291452", "輸入ガム", "Imported gum", 120, 8, "food", False)
    small = Catalog([upc])
    assert small.lookup("036000291452") == upc
    assert small.lookup("0036000291452") == upc
    assert "036000291452" in small and "4901001001071" not in small


def test_search_is_case_insensitive_over_names_and_jan(catalog: Catalog) -> None:
    assert {p.name for p in catalog.search("ONIGIRI", limit=50)} == {p.name for p in catalog.search("onigiri", 50)}
    assert any(p.name == "おにぎり 紅しゃけ" for p in catalog.search("Red SALMON"))
    assert [p.jan for p in catalog.search("01001071")] == ["4901001001071"]
    assert all("ビール" in p.name for p in catalog.search("ビール"))
    assert len(catalog.search("ビール")) >= 3
    assert len(catalog.search("", limit=5)) == 5
    assert catalog.search("onigiri", limit=2) == catalog.search("onigiri", limit=50)[:2]
    assert catalog.search("no such thing") == []


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        ([GOOD_ROW, "4901001001072,おにぎり 梅,Onigiri plum,160,8,food,false"], 3, "check digit (expected 1)"),
        ([GOOD_ROW, GOOD_ROW.replace("紅しゃけ", "梅")], 3, "duplicate JAN 4901001001071 (first on line 2)"),
        (["4901001001071,おにぎり,Onigiri,1.5,8,food,false"], 2, "price '1.5'"),
        (["4901001001071,おにぎり,Onigiri,-150,8,food,false"], 2, "price '-150'"),
        (["4901001001071,おにぎり,Onigiri,,8,food,false"], 2, "price ''"),
        (["4901001001071,おにぎり,Onigiri,150,5,food,false"], 2, "tax_rate '5'"),
        (["4901001001071,おにぎり,Onigiri,150,8,food,maybe"], 2, "age_restricted 'maybe'"),
        (["4901001001071,おにぎり,Onigiri,150,8,food"], 2, "expected 7 fields"),
        (["490100100107,おにぎり,Onigiri,150,8,food,false"], 2, "13 or 8 digits"),
        ([GOOD_ROW, "", "49051216,,Gum,140,8,food,false"], 4, "empty name"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path: Path, rows: list[str], line: int, fragment: str) -> None:
    path = write_csv(tmp_path, *rows)
    with pytest.raises(CatalogError) as caught:
        Catalog.load(path)
    message = str(caught.value)
    assert f"{path}, line {line}:" in message
    assert fragment in message


def test_missing_column_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "4901001001071,おにぎり,Onigiri,150,food,false", header=HEADER.replace(",tax_rate", ""))
    with pytest.raises(CatalogError, match=r"line 1: missing column\(s\) tax_rate"):
        Catalog.load(path)


def test_unreadable_files_are_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read catalog"):
        Catalog.load(tmp_path / "absent.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "\n4901001001071,caf\xe9,Cafe,150,8,food,false\n").encode("latin-1"))
    with pytest.raises(CatalogError, match="not UTF-8"):
        Catalog.load(latin)


def test_a_bom_and_spaces_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text(HEADER + "\n" + GOOD_ROW.replace(",178,", ", 178 ,") + "\n", encoding="utf-8-sig")
    (product,) = Catalog.load(path)
    assert product.jan == "4901001001071" and product.price == 178 and product.age_restricted is False


def test_catalog_in_memory_refuses_bad_products() -> None:
    onigiri = Product("4901001001071", "おにぎり", "Onigiri", 150, 8, "food", False)
    with pytest.raises(CatalogError, match="duplicate JAN"):
        Catalog([onigiri, onigiri])
    with pytest.raises(CatalogError, match="not a valid JAN"):
        Catalog([Product("4901001001072", "x", "x", 1, 8, "food", False)])
