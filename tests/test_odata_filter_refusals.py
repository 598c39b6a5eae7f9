"""Every way `$filter` is refused, with the status and the words a client gets: each branch of the
compiler that refuses a filter is named here, so a changed status or message fails a test."""

import pytest

from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.filter import MAX_FILTER_LENGTH, MAX_FILTER_NODES, FilterCompiler, Parameters, parse_filter
from graphql_odata.odata.query import entity_set


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [
        ("", 400, "$filter is empty"),
        (
            "x" * (MAX_FILTER_LENGTH + 1),
            413,
            f"$filter is {MAX_FILTER_LENGTH + 1} characters; at most {MAX_FILTER_LENGTH}",
        ),
        (
            " or ".join(["BedroomsTotal eq 1"] * 150),
            400,
            f"$filter is too complex (more than {MAX_FILTER_NODES} terms)",
        ),
        ("   ", 400, "$filter is empty"),
        ("City eq", 400, "$filter is not valid OData: unexpected ' ' at position 4"),
        (
            "City has 'x'",
            400,
            "$filter is not valid OData: `has` applies to enumeration types, and this service serves lookups as "
            "strings (RESO Lookup resource): use `Field eq 'Value'`, or `Field/any(v: v eq 'Value')` for a "
            "multi-select",
        ),
        (
            "Appliances/any(x: View/any(x: x eq 'a'))",
            400,
            "$filter: the lambda variable 'x' hides another name",
        ),
        ("ns.City eq 'a'", 400, "$filter: qualified names are not supported (City)"),
        ("City eq 01234567-89ab-cdef-0123-456789abcdef", 400, "$filter: GUID literals are not supported"),
        ("ModificationTimestamp eq duration'P1D'", 400, "$filter: Duration literals are not supported"),
        ("ListPrice eq 12:00:00", 400, "$filter: Time literals are not supported"),
        ("ListPrice eq 1e28", 400, "$filter: 1e28 is out of range for Edm.Decimal"),
        ("concat(City,'a') eq 'b'", 400, "$filter: the function concat() is not supported"),
        ("City eq (", 400, "$filter is not valid OData: it ends too early"),
        ("City in ", 400, "$filter is not valid OData: it ends too early"),
        ("City eq 'a' and", 400, "$filter is not valid OData: unexpected ' ' at position 11"),
        ("ListPrice", 400, "$filter must be a condition, not a Edm.Decimal value"),
        ("City", 400, "$filter must be a condition, not a Edm.String value"),
        ("Foo eq 1", 400, "$filter: Property has no field 'Foo'"),
        (
            "a/b eq 1",
            400,
            "$filter: to filter on related records write Nav/any(r: r/Field ...), "
            "e.g. ListAgent/any(a: a/MemberLastName eq 'Smith')",
        ),
        ("BedroomsTotal eq 99999999999999999999", 400, "$filter: 99999999999999999999 is out of range for Edm.Int64"),
        ("ListPrice eq 1e999999", 400, "$filter: 1e999999 is out of range for Edm.Decimal"),
        (
            "ModificationTimestamp gt 2026-01-01T00:00:00",
            400,
            "$filter: timestamp 2026-01-01T00:00:00 needs a zone (Z or +hh:mm)",
        ),
        ("City eq ('a','b')", 400, "$filter: a list of values belongs after `in`"),
        ("City in 'a'", 400, "$filter is not valid OData: unexpected String(val='a') at position 8"),
        ("City in (1,2)", 400, "$filter: cannot compare Edm.String with Edm.Int64"),
        ("ListingContractDate eq 2026-02-30", 400, "$filter: '2026-02-30' is not a valid date or timestamp"),
        ("City eq 1", 400, "$filter: cannot compare Edm.String with Edm.Int64"),
        ("ListPrice div 0 gt 1", 400, "$filter divides by zero (div 0)"),
        ("ListPrice mod 0 gt 1", 400, "$filter divides by zero (mod 0)"),
        ("BedroomsTotal div 0.0 gt 1", 400, "$filter divides by zero (div 0)"),
        (
            "City add 1 eq 2",
            400,
            "$filter: arithmetic takes Edm.Decimal or Edm.Double or Edm.Int64 or null, not Edm.String",
        ),
        ("contains(City, City)", 400, "$filter: the second argument of contains() must be a string"),
        ("contains(ListPrice, 'a')", 400, "$filter: contains() takes Edm.String, not Edm.Decimal"),
        ("tolower(ListPrice) eq 'a'", 400, "$filter: tolower() takes Edm.String, not Edm.Decimal"),
        ("length(ListPrice) eq 1", 400, "$filter: length() takes Edm.String, not Edm.Decimal"),
        ("year(City) eq 1", 400, "$filter: year() takes Edm.Date or Edm.DateTimeOffset, not Edm.String"),
        ("date(City) eq 2026-01-01", 400, "$filter: date() takes Edm.DateTimeOffset, not Edm.String"),
        ("round(City) eq 1", 400, "$filter: round() takes Edm.Decimal or Edm.Double or Edm.Int64, not Edm.String"),
        ("frobnicate(City) eq 1", 400, "$filter is not valid OData: it ends too early"),
        ("City/any(x: x eq 'a')", 400, "$filter: any() and all() apply to multi-select fields"),
        ("Appliances/all()", 400, "$filter is not valid OData: unexpected ')' at position 15"),
        ("Appliances/any(City: City eq 'a')", 400, "$filter: the lambda variable 'City' hides another name"),
        ("Appliances/any(x: x/any(x: x eq 'a'))", 400, "$filter: any() and all() apply to multi-select fields"),
        ("City eq 'a' or", 400, "$filter is not valid OData: unexpected ' ' at position 11"),
        ("ListPrice eq 1 and City", 400, "$filter must be a condition, not a Edm.String value"),
        (
            "Appliances eq 'a'",
            400,
            "$filter: compare a multi-select field with any() or all(), e.g. F/any(v: v eq 'X')",
        ),
        ("NewConstructionYN eq 1", 400, "$filter: cannot compare Edm.Boolean with Edm.Int64"),
        ("not City", 400, "$filter must be a condition, not a Edm.String value"),
        ("-City eq 1", 400, "$filter: the operand of - takes Edm.Decimal or Edm.Double or Edm.Int64, not Edm.String"),
        (
            "ListingContractDate eq 2026-13-01",
            400,
            "$filter is not valid OData: unexpected Integer(val='-13') at position 27",
        ),
        (
            "ModificationTimestamp gt 2026-01-01T25:00:00Z",
            400,
            "$filter is not valid OData: unexpected Identifier(name='T25', namespace=()) at position 35",
        ),
    ],
)
def test_a_refused_filter_says_why(text: str, status: int, message: str) -> None:
    with pytest.raises(ODataError) as refused:
        FilterCompiler(entity_set("Property"), Parameters()).condition(parse_filter(text))
    assert (refused.value.status, str(refused.value)) == (status, message)
    assert refused.value.target in ("$filter", "Foo", "a/b")


@pytest.mark.parametrize(
    "text", ["ListPrice eq 1e27", "-BedroomsTotal eq -3", "null eq null", "true", "ListPrice eq null"]
)
def test_a_filter_at_the_edge_of_what_is_refused_compiles(text: str) -> None:
    FilterCompiler(entity_set("Property"), Parameters()).condition(parse_filter(text))


def test_the_length_and_size_limits_are_inclusive() -> None:
    """A filter of exactly MAX_FILTER_LENGTH characters, or of exactly MAX_FILTER_NODES terms (67
    comparisons of three nodes, 66 `or`s of two), is compiled; one more term is refused."""
    longest = "City eq '" + "a" * (MAX_FILTER_LENGTH - 10) + "'"
    assert len(longest) == MAX_FILTER_LENGTH
    FilterCompiler(entity_set("Property"), Parameters()).condition(parse_filter(longest))
    parse_filter(" or ".join(["BedroomsTotal eq 1"] * 67))
    with pytest.raises(ODataError, match="too complex"):
        parse_filter(" or ".join(["BedroomsTotal eq 1"] * 68))
