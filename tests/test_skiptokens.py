"""`$skiptoken`s unit by unit: their format is fixed (a replication client holds one across a restart or
an upgrade of the API), they belong to one order, and their values come back as the field's types."""

from datetime import datetime
from decimal import Decimal

import pytest

from graphql_odata.odata.errors import ODataError
from graphql_odata.odata.paging import MAX_PAGE_SIZE, decode_token, encode_token, page_size
from graphql_odata.odata.query import entity_set, parse_query

KEY = b"k" * 32
ROW = {"ListPrice": Decimal("250000.00"), "ModificationTimestamp": datetime.fromisoformat("2026-01-02T03:04:05+00:00"),
       "ListingKey": "QOBRIX_1"}  # fmt: skip
ISSUED = (
    "eyJ2IjpbIjI1MDAwMC4wMCIsIjIwMjYtMDEtMDJUMDM6MDQ6MDUrMDA6MDAiLCJRT0JSSVhfMSJdLCJzIjoiR215aEd6UnV0UGt0bDBqMzI5LUMx"
    "dyJ9"
)
"""The token this version issues for ROW under `$orderby=ListPrice desc,ModificationTimestamp`."""


def query(orderby: str, top: str | None = None):
    return parse_query({"$orderby": orderby} | ({"$top": top} if top else {}), entity_set("Property"))


def signed(orderby: str, values: list) -> str:
    """A token this server signed over `values`, whatever their types."""
    ordered = query(orderby)
    return encode_token(ordered, {term.field: value for term, value in zip(ordered.order, values, strict=True)}, KEY)


def test_a_token_issued_by_this_version_reads_back_as_typed_values() -> None:
    ordered = query("ListPrice desc,ModificationTimestamp")
    assert encode_token(ordered, ROW, KEY) == ISSUED
    assert decode_token(ordered, ISSUED, KEY) == [ROW["ListPrice"], ROW["ModificationTimestamp"], "QOBRIX_1"]
    [price, stamp, _] = decode_token(ordered, ISSUED, KEY)
    assert isinstance(price, Decimal) and isinstance(stamp, datetime)


@pytest.mark.parametrize("other", ["ListPrice,ModificationTimestamp", "ListPrice desc,ModificationTimestamp desc"])
def test_a_token_of_the_same_fields_in_another_direction_is_refused(other: str) -> None:
    with pytest.raises(ODataError) as refused:
        decode_token(query(other), ISSUED, KEY)
    assert (
        str(refused.value) == ("$skiptoken is not one this service issued for this query; start again without it")
        and refused.value.status == 400
    )


@pytest.mark.parametrize(
    ("orderby", "values"),
    [
        ("BedroomsTotal", ["3", "QOBRIX_1"]),
        ("BedroomsTotal", [True, "QOBRIX_1"]),
        ("NewConstructionYN", [1, "QOBRIX_1"]),
        ("ListPrice", [250000, "QOBRIX_1"]),
        ("ListingKey", [7]),
    ],
    ids=[
        "text for an integer",
        "a boolean for an integer",
        "a number for a boolean",
        "a number for a decimal",
        "a number for a key",
    ],
)
def test_a_signed_token_whose_values_are_not_the_fields_types_is_refused(orderby: str, values: list) -> None:
    with pytest.raises(ODataError, match="not one this service issued"):
        decode_token(query(orderby), signed(orderby, values), KEY)


def test_a_page_holds_top_rows_at_most_the_preference_and_a_hundred_by_default() -> None:
    assert page_size(query("ListPrice", top=str(MAX_PAGE_SIZE)), None) == MAX_PAGE_SIZE
    assert page_size(query("ListPrice", top="7"), 5) == 5
    assert page_size(query("ListPrice"), None) == 100
    assert page_size(query("ListPrice"), 250) == 250
