"""Local names that read like Data Dictionary names, found as RESO's `findVariations` finds them.

Names are compared lower-cased with everything but letters and digits removed. A local name is a
variation of a standard one when the two are then equal, when either contains the other (both
longer than 3 characters), or else when they are within an edit distance of a quarter of the local
name's length. Fields are compared with their own resource's DD fields; lookup values with the DD
values of their field's lookup; resources with DD's resources.
"""

import re
from collections.abc import Iterable

from rapidfuzz.distance import Levenshtein

from conf.data_dictionary import DataDictionary
from graphql_odata.certification.report import Finding
from graphql_odata.certification.served_model import ServedEntity

FUZZINESS = 0.25
MIN_MATCHING_LENGTH = 3
CLOSE_MATCH_DISTANCE = 1


def normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def suggestions(name: str, standard_names: Iterable[str]) -> list[dict]:
    """The standard names `name` reads like, each with how it matched (RESO's report keys)."""
    found: list[dict] = []
    local = normalise(name)
    long_enough = len(name) > MIN_MATCHING_LENGTH
    for standard_name in standard_names:
        standard = normalise(standard_name)
        if name == standard_name:
            continue
        if local == standard:
            found.insert(0, {"suggestion": standard_name, "strategy": "Substring", "exactMatch": True})
        elif long_enough and (
            (len(local) > MIN_MATCHING_LENGTH and local in standard)
            or (len(standard) > MIN_MATCHING_LENGTH and standard in local)
        ):
            found.append({"suggestion": standard_name, "strategy": "Substring"})
        elif long_enough:
            limit = int(FUZZINESS * len(name))
            distance = Levenshtein.distance(local, standard, score_cutoff=limit)
            if distance <= limit:
                match = {
                    "suggestion": standard_name,
                    "strategy": "Edit Distance",
                    "distance": distance,
                    "maxDistance": limit,
                }
                found.append(match | ({"closeMatch": True} if distance <= CLOSE_MATCH_DISTANCE else {}))
    return found


def scan(
    sets: dict[str, ServedEntity], dd: DataDictionary, lookup_values: dict[tuple[str, str], set[str]]
) -> list[Finding]:
    """Variations among the served resources' names, local fields and the local values of standard
    lookup fields (`lookup_values`: (resource, field) -> values served)."""
    findings = []
    for entity in sets.values():
        standard_fields = dd.resources.get(entity.name)
        if standard_fields is None:
            for match in suggestions(entity.name, dd.resources):
                findings.append(_variation("resources", entity.name, None, entity.name, match))
            continue
        present = set(entity.fields) | set(entity.links)
        candidates = [name for name, f in standard_fields.items() if not f.is_expansion and name not in present]
        for name in entity.fields:
            if name in standard_fields:
                continue
            for match in suggestions(name, candidates):
                findings.append(_variation("fields", entity.name, name, name, match))
        for name in entity.fields:
            standard = standard_fields.get(name)
            if standard is None or standard.lookup is None:
                continue
            values = dd.lookups.get(standard.lookup, {})
            standard_values = set(values) | set(values.values())
            served = lookup_values.get((entity.name, name), set())
            missing = sorted(v for v in {*values, *values.values()} if v not in served)
            for value in sorted(served - standard_values):
                for match in suggestions(value, missing):
                    findings.append(_variation("lookups", entity.name, name, value, match))
    return findings


def _variation(kind: str, resource: str, field: str | None, name: str, match: dict) -> Finding:
    suggested = {
        "resources": "suggestedResourceName",
        "fields": "suggestedFieldName",
        "lookups": "suggestedLookupValue",
    }[kind]
    detail = {"kind": kind, suggested: match.pop("suggestion"), **match}
    if kind == "lookups":
        detail["lookupValue"] = name
    how = f"within edit distance {detail['distance']}" if "distance" in detail else "by substring"
    return Finding(
        f"variation.{kind[:-1]}",
        "variation",
        f"{name!r} reads like DD 2.0's {detail[suggested]!r} ({how})",
        resource,
        field,
        detail,
    )
