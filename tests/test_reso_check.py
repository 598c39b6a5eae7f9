"""`mls2 reso check` against the real API over HTTP: clean on this product's sandbox-fed server, and
each rule seen broken through a proxy that changes one thing in what the server says.

The proxy is a real HTTP server in front of the real API; a test gives it a change to make to the
metadata, to pages of a resource, or to the query sent on, so the check meets the broken server a
client would meet.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from fastapi import FastAPI, Request, Response
from typer.testing import CliRunner

from conf.cli import app
from conf.data_dictionary import data_dictionary
from graphql_odata.certification import variations
from graphql_odata.security.clients import ClientRegistry
from tests.conftest import PublishedGold, live_api, live_token, served

PAGE_SIZE = 7
"""Small, so every resource pages and whole pages share one timestamp (Lookup's DD values)."""
BROKEN_PAGE_SIZE = 200
"""A check of a broken server pages less: what it must catch does not need small pages."""


@dataclass
class Breakage:
    """What the proxy changes: the query sent on, and the body coming back, by request path."""

    query: Callable[[str, str], str] = lambda path, query: query
    body: Callable[[str, bytes], bytes] = lambda path, body: body


@dataclass
class Proxy:
    url: str
    token: str
    breakage: Breakage
    upstream: str


def proxy_app(upstream: str, proxy: "list[Proxy]") -> FastAPI:
    service = FastAPI()

    @service.get("/{path:path}")
    def forward(path: str, request: Request) -> Response:
        breakage = proxy[0].breakage
        query = breakage.query(path, request.url.query)
        answer = requests.get(
            f"{upstream}/{path}" + (f"?{query}" if query else ""),
            headers={k: v for k, v in request.headers.items() if k.lower() in ("authorization", "prefer", "accept")},
            timeout=60,
        )
        body = answer.content.replace(upstream.encode(), str(request.base_url).rstrip("/").encode())
        return Response(breakage.body(path, body), answer.status_code, media_type=answer.headers.get("content-type"))

    return service


@pytest.fixture(scope="module")
def proxy(published_gold: PublishedGold) -> Iterator[Proxy]:
    with live_api(published_gold.settings) as upstream:
        token = live_token(published_gold.settings, upstream)
        holder: list[Proxy] = []
        with served(proxy_app(upstream, holder)) as url:
            holder.append(Proxy(url, token, Breakage(), upstream))
            yield holder[0]
            holder[0].breakage = Breakage()


def run(
    proxy: Proxy, tmp_path: Path, breakage: Breakage | None = None, page_size: int = BROKEN_PAGE_SIZE
) -> tuple[int, dict]:
    proxy.breakage = breakage or Breakage()
    report = tmp_path / "report.json"
    args = ["reso", "check", "--url", f"{proxy.url}/odata", "--token", proxy.token, "--report", str(report)]
    result = CliRunner().invoke(app, [*args, "--page-size", str(page_size)])
    proxy.breakage = Breakage()
    assert report.exists(), result.output
    return result.exit_code, json.loads(report.read_text())


def findings(report: dict, rule: str) -> list[tuple[str | None, str | None]]:
    return [(f["resource"], f["field"]) for f in report["findings"] if f["rule"] == rule]


def edit_metadata(change: Callable[[str], str]) -> Breakage:
    return Breakage(body=lambda path, body: change(body.decode()).encode() if path.endswith("$metadata") else body)


def edit_records(resource: str, change: Callable[[list[dict]], None]) -> Breakage:
    def body(path: str, content: bytes) -> bytes:
        if path != f"odata/{resource}":
            return content
        page = json.loads(content)
        change(page.get("value", []))
        return json.dumps(page).encode()

    return Breakage(body=body)


@pytest.fixture(scope="module")
def clean(proxy: Proxy, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    return run(proxy, tmp_path_factory.mktemp("clean"), page_size=PAGE_SIZE)


def test_the_served_api_passes_with_no_failure_variation_or_warning(clean: tuple[int, dict]) -> None:
    code, report = clean
    assert code == 0 and report["passed"]
    assert {k: v for k, v in report["summary"].items() if k != "notes"} == {
        "failures": 0,
        "variations": 0,
        "warnings": 0,
    }
    # What remains are notes: lengths above DD's suggestion where Qobrix sends longer text, and the
    # one local navigation property.
    assert {f["rule"] for f in report["findings"]} == {"field.max_length", "navigation.local"}


def test_every_resource_replicates_whole_by_next_link_top_skip_and_timestamp_both_ways(
    clean: tuple[int, dict], published_gold: PublishedGold
) -> None:
    _, report = clean
    by_resource: dict[str, dict[str, dict]] = {}
    for item in report["replication"]:
        by_resource.setdefault(item["resource"], {})[item["strategy"]] = item
    assert set(by_resource) == {"Property", "Member", "Office", "Media", "Contacts", "ShowingAppointment", "Lookup"}
    for resource, strategies in by_resource.items():
        assert set(strategies) == {"NextLink", "TopAndSkip", "TimestampAsc", "TimestampDesc"}, resource
        for item in strategies.values():
            assert item["complete"] and item["record_count"] > 0, item
    assert by_resource["Property"]["NextLink"]["record_count"] == len(published_gold.rows("property"))
    # Lookup's DD values share one timestamp: more than a page of them, read past by nextLink.
    lookup = by_resource["Lookup"]["TimestampAsc"]
    assert lookup["records_fetched"] > lookup["record_count"] > 10 * PAGE_SIZE


def test_a_lookup_field_without_its_annotation_is_a_failure(proxy: Proxy, tmp_path: Path) -> None:
    pattern = re.compile(r'(<Property Name="StandardStatus"[^>]*>)\s*<Annotation [^>]*/>\s*</Property>')
    code, report = run(proxy, tmp_path, edit_metadata(lambda text: pattern.sub(lambda m: m.group(1)[:-1] + "/>", text)))
    assert code == 1
    assert ("Property", "StandardStatus") in findings(report, "lookup.annotation")


def test_a_value_longer_than_its_max_length_is_a_failure(proxy: Proxy, tmp_path: Path) -> None:
    def lengthen(records: list[dict]) -> None:
        if records:
            records[0]["City"] = "x" * 300

    code, report = run(proxy, tmp_path, edit_records("Property", lengthen))
    assert code == 1
    assert findings(report, "payload.max_length") == [("Property", "City")]
    assert report["schemaValidation"]["errors"]


def test_a_local_field_named_like_a_dd_field_is_a_variation(proxy: Proxy, tmp_path: Path) -> None:
    served_fields = requests.get(
        f"{proxy.url}/odata/$metadata", headers={"Authorization": f"Bearer {proxy.token}"}, timeout=30
    ).text
    unserved = next(
        name
        for name in sorted(data_dictionary().resources["Property"])
        if f'"{name}"' not in served_fields
        and len(name) > 8
        and not data_dictionary().resources["Property"][name].is_expansion
    )
    local = f"X_{unserved}s"
    added = f'<Property Name="{local}" Type="Edm.Int32"/>'
    code, report = run(
        proxy,
        tmp_path,
        edit_metadata(
            lambda text: text.replace('<Property Name="ListingKey"', added + '<Property Name="ListingKey"', 1)
        ),
    )
    assert code == 1
    assert ("Property", local) in findings(report, "variation.field")
    assert report["variations"]["fields"][0]["suggestedFieldName"] == unserved


def test_a_lookup_value_missing_from_lookup_is_a_failure(proxy: Proxy, tmp_path: Path) -> None:
    def drop_active(records: list[dict]) -> None:
        records[:] = [r for r in records if (r["LookupName"], r["StandardLookupValue"]) != ("StandardStatus", "Active")]

    code, report = run(proxy, tmp_path, edit_records("Lookup", drop_active))
    assert code == 1
    assert ("Property", "StandardStatus") in findings(report, "payload.lookup")


def test_a_wrong_type_a_synonym_and_a_broken_document_are_failures(proxy: Proxy, tmp_path: Path) -> None:
    synonym = data_dictionary().resources["Property"]["ListPrice"].synonyms[0]

    def breaks(text: str) -> str:
        text = text.replace(
            '<Property Name="BedroomsTotal" Type="Edm.Int32"', '<Property Name="BedroomsTotal" Type="Edm.Boolean"'
        )
        text = text.replace(
            '<Property Name="ListingKey"',
            f'<Property Name="{synonym}" Type="Edm.Int32"/><Property Name="ListingKey"',
            1,
        )
        return text.replace('<EntityType Name="Office">', "<EntityType>", 1)

    code, report = run(proxy, tmp_path, edit_metadata(breaks))
    assert code == 1
    assert ("Property", "BedroomsTotal") in findings(report, "field.type")
    assert ("Property", synonym) in findings(report, "field.synonym")
    assert findings(report, "metadata.syntax")


def test_a_server_that_loses_records_at_timestamp_boundaries_fails_replication(proxy: Proxy, tmp_path: Path) -> None:
    """Answering `ge` as `gt` (what RESO's own client asks) skips records that share a page's last
    timestamp: the count no longer matches."""
    code, report = run(
        proxy,
        tmp_path,
        Breakage(query=lambda path, query: query.replace("+ge+", "+gt+").replace("%20ge%20", "%20gt%20")),
    )
    assert code == 1
    assert ("Lookup", None) in findings(report, "replication.TimestampAsc")


def test_bad_arguments_and_an_unreachable_server_are_named(proxy: Proxy, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["reso", "check", "--url", f"{proxy.url}/odata"])
    assert result.exit_code == 2 and "--url needs --token" in result.output
    result = runner.invoke(
        app,
        ["reso", "check", "--url", "http://127.0.0.1:9/odata", "--token", "t", "--report", str(tmp_path / "r.json")],
    )
    assert result.exit_code == 2 and "cannot check" in result.output and "127.0.0.1:9" in result.output
    assert not (tmp_path / "r.json").exists()
    result = runner.invoke(app, ["reso", "check", "--url", "ftp://h/odata", "--token", "t"])
    assert result.exit_code == 2 and "not an http(s) URL" in result.output
    result = runner.invoke(app, ["reso", "check", "--page-size", "0"])
    assert result.exit_code == 2 and "page-size" in result.output


def test_the_variation_rules_are_reso_s() -> None:
    """Normalised equality, substring both ways past 3 characters, then edit distance within a quarter."""
    match = variations.suggestions
    assert match("X_Electricity", ["Electric"])[0]["strategy"] == "Substring"
    assert match("list_price", ["ListPrice"])[0].get("exactMatch")
    assert match("X_Roof", ["Roof"]) == [{"suggestion": "Roof", "strategy": "Substring"}]
    assert match("Bedroms", ["Bedrooms"])[0] == {"suggestion": "Bedrooms", "strategy": "Edit Distance", "distance": 1,
                                                 "maxDistance": 1, "closeMatch": True}  # fmt: skip
    assert match("Poo", ["Pool", "Poo_"]) == [{"suggestion": "Poo_", "strategy": "Substring", "exactMatch": True}]
    # The renamed roof-garden fields read like no DD 2.0 Property field.
    standard = [name for name, f in data_dictionary().resources["Property"].items() if not f.is_expansion]
    assert match("X_SkyGardenArea", standard) == match("X_CustomSkyGarden", standard) == []
    assert match("X_RoofGardenArea", standard)[0]["suggestion"] == "Roof"


def test_with_no_url_it_checks_this_product_s_api_as_a_client_it_registers(
    proxy: Proxy, published_gold: PublishedGold, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLS2_DATA_DIR", str(published_gold.settings.paths.root))
    monkeypatch.setenv("MLS2_API_PORT", proxy.upstream.rsplit(":", 1)[1])
    report = tmp_path / "local.json"
    result = CliRunner().invoke(app, ["reso", "check", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["serviceRootUri"] == f"{proxy.upstream}/odata/"
    assert ClientRegistry(published_gold.settings.paths.api_clients).get("reso-check") is not None


def on(resource: str, change: Callable[[str], str]) -> Breakage:
    return Breakage(query=lambda path, query: change(query) if path == f"odata/{resource}" else query)


def test_a_server_sending_fewer_records_than_asked_is_replicated_whole(proxy: Proxy, tmp_path: Path) -> None:
    """Servers may cap `$top`: each strategy reads on until a page comes back empty."""
    code, report = run(proxy, tmp_path, on("Property", lambda query: query.replace("$top=200", "$top=3")))
    assert code == 0, report["findings"]
    paged = [i for i in report["replication"] if i["resource"] == "Property" and i["strategy"] != "NextLink"]
    assert len(paged) == 3
    assert all(item["complete"] and item["requests"] > item["record_count"] // 3 for item in paged)


def test_paging_that_does_not_move_on_is_a_failure_not_a_hang(proxy: Proxy, tmp_path: Path) -> None:
    code, report = run(proxy, tmp_path, on("Member", lambda query: re.sub(r"&?\$skip=\d+", "", query)))
    assert code == 1
    [finding] = [f for f in report["findings"] if f["rule"] == "replication.TopAndSkip"]
    assert finding["resource"] == "Member" and "paging does not move on" in finding["message"]
