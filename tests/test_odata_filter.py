"""`$filter` against a reference: random filters are evaluated in Python over the same rows, with OData's rules.

Each generated filter comes with its own Python predicate; the API must return exactly the rows
the predicate accepts. Hostile literals (quotes, LIKE wildcards, SQL) must be treated as data,
and no filter, well-formed or not, may produce a 500.
"""

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphql_odata.odata.query import entity_set
from tests.conftest import PublishedGold, authorized_api

Row = dict
Predicate = Callable[[Row], bool]
HOSTILE = ["O'Brien", "%", "_", "\\", "'; DROP TABLE property; --", "a' or '1'='1", "ÄÖ", ""]
FIELDS = {
    "string": ["City", "StandardStatus", "ListingId", "PostalCode"],
    "integer": ["BedroomsTotal", "YearBuilt", "BathroomsTotalInteger"],
    "decimal": ["ListPrice", "LivingArea"],
    "date": ["ListingContractDate"],
    "timestamp": ["ModificationTimestamp", "OriginalEntryTimestamp"],
    "boolean": ["NewConstructionYN", "PoolPrivateYN"],
    "multi": ["Appliances", "View"],
}


@dataclass(frozen=True)
class Filter:
    text: str
    test: Predicate


@pytest.fixture(scope="module")
def api(published_gold: PublishedGold) -> Iterator[TestClient]:
    with authorized_api(published_gold.settings) as client:
        yield client


class Rows(list):
    """The property rows, with a short repr: Hypothesis prints its arguments when a case fails."""

    def __repr__(self) -> str:
        return f"<{len(self)} property rows>"


@pytest.fixture(scope="module")
def rows(published_gold: PublishedGold) -> Rows:
    return Rows(published_gold.rows("property"))


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def literal(kind: str, value: object) -> str:
    if kind == "string":
        return quote(value)
    if kind == "timestamp":
        return value.isoformat().replace("+00:00", "Z")
    if kind == "date":
        return value.isoformat()
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def ordered(op: str, left: object, right: object) -> bool:
    """OData: eq/ne treat null as a value; the other comparisons with a null operand are false."""
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if left is None or right is None:
        return False
    return {"gt": left > right, "ge": left >= right, "lt": left < right, "le": left <= right}[op]


def values_of(data: list[Row], kind: str, field: str) -> st.SearchStrategy:
    seen = sorted({r[field] for r in data if r[field] is not None}, key=str)
    invented = {
        "string": st.sampled_from(HOSTILE) | st.text(max_size=6),
        "integer": st.integers(-5, 3000),
        "decimal": st.decimals(-1000, 10**7, places=2, allow_nan=False),
        "date": st.dates(date(2015, 1, 1), date(2027, 1, 1)),
        "timestamp": st.datetimes(datetime(2015, 1, 1), datetime(2027, 1, 1)).map(lambda d: d.replace(tzinfo=UTC)),
        "boolean": st.booleans(),
    }[kind]
    return st.sampled_from(seen) | invented if seen else invented


@st.composite
def comparisons(draw, data: list[Row]) -> Filter:
    kind = draw(st.sampled_from(["string", "integer", "decimal", "date", "timestamp", "boolean"]))
    field = draw(st.sampled_from(FIELDS[kind]))
    ops = ["eq", "ne"] if kind == "boolean" else ["eq", "ne", "gt", "ge", "lt", "le"]
    op = draw(st.sampled_from(ops))
    if draw(st.integers(0, 9)) == 0:
        op = draw(st.sampled_from(["eq", "ne"]))
        return Filter(f"{field} {op} null", lambda r: ordered(op, r[field], None))
    value = draw(values_of(data, kind, field))
    if kind == "timestamp" and draw(st.booleans()):
        offset = timedelta(hours=draw(st.integers(-11, 12)))
        shown = value.astimezone(timezone(offset)).isoformat()
        return Filter(f"{field} {op} {shown}", lambda r: ordered(op, r[field], value))
    if draw(st.booleans()):
        return Filter(f"{literal(kind, value)} {flip(op)} {field}", lambda r: ordered(op, r[field], value))
    return Filter(f"{field} {op} {literal(kind, value)}", lambda r: ordered(op, r[field], value))


def flip(op: str) -> str:
    return {"gt": "lt", "lt": "gt", "ge": "le", "le": "ge"}.get(op, op)


@st.composite
def functions(draw, data: list[Row]) -> Filter:
    choice = draw(st.integers(0, 7))
    if choice <= 2:
        name = ["contains", "startswith", "endswith"][choice]
        field = draw(st.sampled_from(["City", "PostalCode", "ListingId"]))
        text = draw(values_of(data, "string", field))[: draw(st.integers(0, 4))]
        method = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[name]
        return Filter(f"{name}({field},{quote(text)})", lambda r: r[field] is not None and method(r[field], text))
    if choice == 3:
        field, text = "City", draw(values_of(data, "string", "City"))
        case = draw(st.sampled_from(["tolower", "toupper"]))
        convert = str.lower if case == "tolower" else str.upper
        return Filter(
            f"{case}({field}) eq {quote(convert(text))}",
            lambda r: r[field] is not None and convert(r[field]) == convert(text),
        )
    if choice == 4:
        n, op = draw(st.integers(0, 12)), draw(st.sampled_from(["eq", "gt", "le"]))
        return Filter(f"length(City) {op} {n}", lambda r: ordered(op, None if r["City"] is None else len(r["City"]), n))
    if choice == 5:
        part = draw(st.sampled_from(["year", "month", "day"]))
        field = draw(st.sampled_from(["ListingContractDate", "ModificationTimestamp"]))
        n, op = draw(st.integers(1, 2026)), draw(st.sampled_from(["eq", "ge", "lt"]))
        return Filter(
            f"{part}({field}) {op} {n}",
            lambda r: ordered(op, None if r[field] is None else getattr(r[field], part), n),
        )
    if choice == 6:
        field = draw(st.sampled_from(FIELDS["multi"]))
        seen = sorted({v for r in data for v in r[field] or []}) or ["None"]
        value = draw(st.sampled_from(seen) | st.sampled_from(HOSTILE))
        if draw(st.booleans()):
            return Filter(f"{field}/any(x: x eq {quote(value)})", lambda r: value in (r[field] or []))
        return Filter(f"{field}/all(x: x ne {quote(value)})", lambda r: value not in (r[field] or []))
    field = draw(st.sampled_from(FIELDS["integer"]))
    add, n = draw(st.integers(-3, 3)), draw(st.integers(-2, 12))
    op = draw(st.sampled_from(["eq", "gt", "le", "ne"]))
    return Filter(f"{field} add {add} {op} {n}", lambda r: ordered(op, None if r[field] is None else r[field] + add, n))


@st.composite
def memberships(draw, data: list[Row]) -> Filter:
    field = draw(st.sampled_from(["StandardStatus", "City", "BedroomsTotal"]))
    kind = "integer" if field == "BedroomsTotal" else "string"
    values = draw(st.lists(values_of(data, kind, field), min_size=1, max_size=4))
    with_null = draw(st.booleans())
    listed = ",".join([literal(kind, v) for v in values] + (["null"] if with_null else []))
    return Filter(f"{field} in ({listed})", lambda r: r[field] in values or (with_null and r[field] is None))


def filters(data: list[Row]) -> st.SearchStrategy[Filter]:
    atoms = comparisons(data) | functions(data) | memberships(data)
    booleans = st.sampled_from(FIELDS["boolean"]).map(lambda f: Filter(f, lambda r: r[f] is True))

    def combine(children: st.SearchStrategy[Filter]) -> st.SearchStrategy[Filter]:
        both = st.tuples(children, children)
        return (
            both.map(lambda p: Filter(f"({p[0].text}) and ({p[1].text})", lambda r: p[0].test(r) and p[1].test(r)))
            | both.map(lambda p: Filter(f"({p[0].text}) or ({p[1].text})", lambda r: p[0].test(r) or p[1].test(r)))
            | children.map(lambda c: Filter(f"not ({c.text})", lambda r: not c.test(r)))
        )

    return st.recursive(atoms | booleans, combine, max_leaves=6)


def served_keys(api: TestClient, text: str) -> set[str]:
    response = api.get("/odata/Property", params={"$filter": text, "$select": "ListingKey", "$top": "1000"})
    assert response.status_code == 200, f"{text}: {response.text}"
    return {r["ListingKey"] for r in response.json()["value"]}


def test_the_reference_sees_enough_data(rows: list[Row]) -> None:
    """The generators draw from real values: the data must have nulls, lists and both booleans to mean anything."""
    assert len(rows) >= 200
    assert any(r["BedroomsTotal"] is None for r in rows) and any(r["BedroomsTotal"] for r in rows)
    assert any(r["Appliances"] for r in rows) and any(not r["Appliances"] for r in rows)
    assert {r["NewConstructionYN"] for r in rows} >= {True, False}


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_filters_return_exactly_what_the_reference_accepts(api: TestClient, rows: list[Row], data) -> None:
    chosen = data.draw(filters(rows))
    expected = {r["ListingKey"] for r in rows if chosen.test(r)}
    assert served_keys(api, chosen.text) == expected, chosen.text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_strings_are_data(api: TestClient, rows: list[Row], hostile: str) -> None:
    for text in (f"City eq {quote(hostile)}", f"contains(City,{quote(hostile)})", f"City ne {quote(hostile)}"):
        op = text.split("(")[0]
        expected = {
            r["ListingKey"]
            for r in rows
            if (op == "contains" and r["City"] is not None and hostile in r["City"])
            or (text.startswith("City eq") and r["City"] == hostile)
            or (text.startswith("City ne") and r["City"] != hostile)
        }
        assert served_keys(api, text) == expected


def test_not_keeps_rows_whose_comparison_had_a_null(api: TestClient, rows: list[Row]) -> None:
    """RESO Core's `not (F le -1)`: a null F makes `F le -1` false, so `not` keeps the row."""
    assert served_keys(api, "not (BedroomsTotal le -1)") == {r["ListingKey"] for r in rows}


def test_date_now_and_rounding_match_the_reference(api: TestClient, rows: list[Row]) -> None:
    """The functions the generator does not draw, each against its Python reading."""
    stamps = [r["ModificationTimestamp"].astimezone(UTC) for r in rows if r["ModificationTimestamp"] is not None]
    day = sorted(stamps)[len(stamps) // 2].date()
    assert served_keys(api, f"date(ModificationTimestamp) eq {day.isoformat()}") == {
        r["ListingKey"]
        for r in rows
        if r["ModificationTimestamp"] is not None and r["ModificationTimestamp"].astimezone(UTC).date() == day
    }
    assert served_keys(api, "ModificationTimestamp le now()") == {
        r["ListingKey"] for r in rows if r["ModificationTimestamp"] is not None
    }
    areas = sorted(r["LivingArea"] for r in rows if r["LivingArea"] is not None and r["LivingArea"] % 1)
    assert areas, "the reference needs areas with a fraction"
    area = areas[len(areas) // 2]
    readings = {"floor": math.floor, "ceiling": math.ceil, "round": lambda v: math.floor(v + Decimal("0.5"))}
    for name, reading in readings.items():
        target = reading(area)
        assert served_keys(api, f"{name}(LivingArea) eq {target}") == {
            r["ListingKey"] for r in rows if r["LivingArea"] is not None and reading(r["LivingArea"]) == target
        }, name


def test_negation_and_decimal_literals_match_the_reference(api: TestClient, rows: list[Row]) -> None:
    assert served_keys(api, "-BedroomsTotal eq -3") == {r["ListingKey"] for r in rows if r["BedroomsTotal"] == 3}
    price = sorted(r["ListPrice"] for r in rows if r["ListPrice"] is not None)[len(rows) // 2]
    assert served_keys(api, f"ListPrice ge {price:f}") == {
        r["ListingKey"] for r in rows if r["ListPrice"] is not None and r["ListPrice"] >= price
    }


def test_a_bare_boolean_field_and_one_item_lists_match_the_reference(api: TestClient, rows: list[Row]) -> None:
    """`not F` keeps the rows where F is unknown (as `not (F le -1)` does); a list of one value after
    `in` may be spaced, and may follow another `in`."""
    booleans = [name for name, field in entity_set("Property").fields.items() if field.type == "Edm.Boolean"]
    field = next(name for name in booleans if {r[name] for r in rows} == {True, False, None})
    assert served_keys(api, f"not {field}") == {r["ListingKey"] for r in rows if r[field] is not True}
    city = sorted(r["City"] for r in rows if r["City"])[0]
    assert served_keys(api, f"City in  ( {quote(city)} )") == {r["ListingKey"] for r in rows if r["City"] == city}
    assert served_keys(api, f"City in ('nowhere', 'never') or City in ({quote(city)})") == {
        r["ListingKey"] for r in rows if r["City"] == city
    }


def test_any_without_a_condition_is_a_list_with_values_and_all_holds_for_none(api: TestClient, rows: list[Row]) -> None:
    assert served_keys(api, "Appliances/any()") == {r["ListingKey"] for r in rows if r["Appliances"]}
    assert served_keys(api, "Appliances/all(x: x eq 'no such value')") == {
        r["ListingKey"] for r in rows if not r["Appliances"]
    }


TOKENS = [
    "ListPrice", "City", "Appliances", "Nope", "eq", "ne", "gt", "and", "or", "not", "(", ")", ",", "/", "any",
    "all", "x:", "x", "'a'", "'", "1", "-1", "1.5", "1e400", "99999999999999999999", "2024-01-01",
    "2024-13-45", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00", "null", "true", "contains", "length",
    "year", "now()", "in", "has", "add", "div", "mod", "mul", " ", "$", ";", "--", "/*",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12), junk=st.text(max_size=20))
def test_no_filter_text_produces_a_server_error(api: TestClient, tokens: list[str], junk: str) -> None:
    for text in (" ".join(tokens), junk):
        response = api.get("/odata/Property", params={"$filter": text, "$select": "ListingKey"})
        assert response.status_code in {200, 400, 413}, f"{text!r}: {response.status_code} {response.text}"
        if response.status_code != 200:
            assert set(response.json()["error"]) == {"code", "message", "target", "details"}


def test_long_and_deep_filters_are_refused_with_a_reason(api: TestClient) -> None:
    long = api.get("/odata/Property", params={"$filter": "City eq '" + "a" * 5000 + "'"})
    assert long.status_code == 413 and "at most" in long.json()["error"]["message"]
    wide = api.get("/odata/Property", params={"$filter": " or ".join(["BedroomsTotal eq 1"] * 150)})
    assert wide.status_code == 400 and "too complex" in wide.json()["error"]["message"]
    deep = api.get("/odata/Property", params={"$filter": "not (" * 600 + "true" + ")" * 600})
    assert deep.status_code == 400 and "too complex" in deep.json()["error"]["message"]
