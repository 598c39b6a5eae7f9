"""Ordering and paging one entity's records without materialising them.

A list result is a dense run of untouched base records (their `ref`, `created` and
`modified` all increase with the index, so a range of indices answers a time filter
exactly) plus a sparse set of "extras": records created, edited, trashed or restored
since the sandbox started, each evaluated on its own. Both merge into one order by
(sort key, index), so page k of a million records costs a few binary searches.
"""

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ingestion.sandbox.search import And, Between, Compare, InList, Not, Or, parse_moment

MONOTONE_FIELDS = ("ref", "created", "modified", "last_media_update")
"""Fields that grow with the index among untouched base records (`last_media_update` starts at `created`)."""
Ranges = list[tuple[int, int]]


def _merge(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for low, high in sorted(r for r in ranges if r[0] < r[1]):
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _intersect(left: Ranges, right: Ranges) -> Ranges:
    return _merge([(max(a, c), min(b, d)) for a, b in left for c, d in right if max(a, c) < min(b, d)])


def _complement(ranges: Ranges, count: int) -> Ranges:
    result, cursor = [], 0
    for low, high in ranges:
        result.append((cursor, low))
        cursor = high
    result.append((cursor, count))
    return _merge(result)


@dataclass(frozen=True)
class Candidates:
    ranges: Ranges
    exact: bool
    """True when every untouched base record in `ranges` matches and no other one does."""


def base_candidates(
    node, count: int, base_key: Callable[[str, int], object], decode_id: Callable[[str], int | None]
) -> Candidates:
    """Which untouched base records can match `node`, derived from the monotone fields."""
    everything = Candidates([(0, count)], exact=False)
    if isinstance(node, And):
        parts = [base_candidates(item, count, base_key, decode_id) for item in node.items]
        ranges = [(0, count)]
        for part in parts:
            ranges = _intersect(ranges, part.ranges)
        return Candidates(ranges, all(part.exact for part in parts))
    if isinstance(node, Or):
        parts = [base_candidates(item, count, base_key, decode_id) for item in node.items]
        return Candidates(_merge([r for part in parts for r in part.ranges]), all(part.exact for part in parts))
    if isinstance(node, Not):
        inner = base_candidates(node.item, count, base_key, decode_id)
        return Candidates(_complement(inner.ranges, count), True) if inner.exact else everything
    if isinstance(node, InList) and node.field == "id" and not node.negate:
        indices = {decode_id(value) for value in node.values if isinstance(value, str)}
        return Candidates(_merge([(i, i + 1) for i in indices if i is not None and i < count]), True)
    if isinstance(node, Compare) and node.field == "id" and node.op == "==" and isinstance(node.value, str):
        index = decode_id(node.value)
        return Candidates([(index, index + 1)] if index is not None and index < count else [], True)
    if isinstance(node, Compare) and node.field in MONOTONE_FIELDS and node.value is not None and node.op != "!=":
        target = _key_value(node.field, node.value)
        if target is None:
            return everything
        key = lambda i: base_key(node.field, i)  # noqa: E731
        first_at_least = bisect.bisect_left(range(count), target, key=key)
        first_above = bisect.bisect_right(range(count), target, key=key)
        ranges = {
            ">=": [(first_at_least, count)],
            ">": [(first_above, count)],
            "<": [(0, first_at_least)],
            "<=": [(0, first_above)],
            "==": [(first_at_least, first_above)],
        }[node.op]
        return Candidates(_merge(ranges), True)
    if isinstance(node, Between) and node.field == "ref":
        return Candidates(_merge([(max(0, int(node.low) - 1), min(count, int(node.high)))]), node.low == int(node.low))
    return everything


def _key_value(field: str, value: object) -> object:
    if field == "ref":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return parse_moment(value) if isinstance(value, str) else None


class Ordering:
    """A list result: dense base records in `ranges` (minus `specials`) merged with sorted `extras`."""

    def __init__(
        self,
        ranges: Ranges,
        specials: list[int],
        extras: list[tuple[object, int]],
        dense_key: Callable[[int], tuple],
        *,
        descending: bool,
    ) -> None:
        self.ranges = ranges
        self.specials = specials
        self.dense_key = dense_key
        self.descending = descending
        self._range_sizes = [(high - low) - self._specials_between(low, high) for low, high in ranges]
        self.dense_count = sum(self._range_sizes)
        self.extras = sorted(extras)
        positions = []
        for rank, (key, index) in enumerate(self.extras):
            boundary = bisect.bisect_left(range(self._base_limit()), (key, index), key=dense_key)
            positions.append(self._dense_below(boundary) + rank)
        self.extra_positions = positions
        self.count = self.dense_count + len(self.extras)

    def _base_limit(self) -> int:
        return self.ranges[-1][1] if self.ranges else 0

    def _specials_between(self, low: int, high: int) -> int:
        return bisect.bisect_left(self.specials, high) - bisect.bisect_left(self.specials, low)

    def _dense_below(self, position: int) -> int:
        total = 0
        for low, high in self.ranges:
            if position <= low:
                break
            top = min(high, position)
            total += (top - low) - self._specials_between(low, top)
        return total

    def _dense_select(self, ordinal: int) -> int:
        for (low, high), size in zip(self.ranges, self._range_sizes, strict=True):
            if ordinal < size:
                # smallest x in [low, high) with ordinal + 1 dense records in [low, x]
                x = bisect.bisect_left(
                    range(low, high), ordinal + 1, key=lambda v: (v - low + 1) - self._specials_between(low, v + 1)
                )
                return low + x
            ordinal -= size
        raise IndexError("dense ordinal out of range")

    def _ascending_run(self, start: int, stop: int) -> list[int]:
        """Positions start..stop-1 in ascending order: one binary search, then a walk."""
        result: list[int] = []
        slot = bisect.bisect_left(self.extra_positions, start)
        dense_index: int | None = None
        for position in range(start, stop):
            if slot < len(self.extra_positions) and self.extra_positions[slot] == position:
                result.append(self.extras[slot][1])
                slot += 1
                continue
            dense_index = self._dense_select(position - slot) if dense_index is None else self._dense_next(dense_index)
            result.append(dense_index)
        return result

    def _dense_next(self, index: int) -> int:
        """The dense index after `index`: the next one in a range that is not special."""
        candidate = index + 1
        for low, high in self.ranges:
            if candidate >= high:
                continue
            candidate = max(candidate, low)
            special = bisect.bisect_left(self.specials, candidate)
            while special < len(self.specials) and self.specials[special] == candidate and candidate < high:
                candidate += 1
                special += 1
            if candidate < high:
                return candidate
        raise IndexError("no dense index after the last one")

    def page(self, offset: int, limit: int) -> list[int]:
        stop = min(offset + limit, self.count)
        if offset >= stop:
            return []
        if self.descending:
            return self._ascending_run(self.count - stop, self.count - offset)[::-1]
        return self._ascending_run(offset, stop)


class Materialized:
    """A list result computed record by record (non-monotone filters or sorts)."""

    def __init__(self, indices: list[int]) -> None:
        self.indices = indices
        self.count = len(indices)

    def page(self, offset: int, limit: int) -> list[int]:
        return self.indices[offset : offset + limit]


def sort_value(value: object) -> tuple:
    """Sort NULLs first, then values of one kind; date-time text sorts as time."""
    if value is None:
        return (0, "")
    if isinstance(value, str) and (moment := parse_moment(value)) is not None and len(value) >= 10:
        return (1, moment)
    if isinstance(value, datetime):
        return (1, value)
    return (2, value) if isinstance(value, (int, float)) else (3, str(value))
