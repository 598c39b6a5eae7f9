"""Deterministic identity and randomness for generated records.

Every record is a function of (seed, entity, index, version). Ids are UUIDs that
encode the index through a keyed Feistel permutation, so an id maps back to its
record in constant time with no table in memory, yet looks random.
"""

import hashlib
import random
import uuid

MASK64 = (1 << 64) - 1
MASK31 = (1 << 31) - 1
MASK62 = (1 << 62) - 1
ROUNDS = 4


def mix64(value: int) -> int:
    """splitmix64's finaliser: a fast, well-distributed 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK64
    return value ^ (value >> 31)


def text_key(*parts: object) -> int:
    """A 64-bit key from text parts (stable across runs, unlike `hash`)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rng_for(key: int, index: int, version: int = 0) -> random.Random:
    """The random source of one record version: depends only on its arguments."""
    return random.Random(mix64(key ^ mix64(index * 0x100000001B3 + version)))


def format_uuid(value: int) -> str:
    """A 128-bit integer as canonical UUID text (faster than `str(uuid.UUID(int=...))`)."""
    text = "%032x" % value  # noqa: UP031 - the fastest way to hex here
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def unit(key: int, index: int) -> float:
    """A uniform number in [0, 1) from (key, index), without building a Random."""
    return mix64(key ^ mix64(index)) / 2**64


class IdCodec:
    """Index <-> UUID for one (seed, entity), invertible and collision-free."""

    def __init__(self, seed: int, entity: str) -> None:
        self.round_keys = [text_key(seed, entity, "round", r) for r in range(ROUNDS)]
        self.check_key = text_key(seed, entity, "check")

    def _round(self, half: int, key: int) -> int:
        return mix64(half ^ key) & MASK31

    def encode(self, index: int) -> str:
        left, right = (index >> 31) & MASK31, index & MASK31
        for key in self.round_keys:
            left, right = right, left ^ self._round(right, key)
        low = (left << 31) | right
        high = mix64(low ^ self.check_key)
        value = (high << 64) | (0b10 << 62) | low
        value = (value & ~(0xF << 76)) | (0x4 << 76)
        return format_uuid(value)

    def decode(self, text: str) -> int | None:
        """The index behind an id, or None when the id was not made by this codec."""
        try:
            value = uuid.UUID(str(text)).int
        except ValueError:
            return None
        low = value & MASK62
        expected_high = (mix64(low ^ self.check_key) & ~(0xF << 12)) | (0x4 << 12)
        if value >> 64 != expected_high or (value >> 62) & 0b11 != 0b10:
            return None
        left, right = low >> 31, low & MASK31
        for key in reversed(self.round_keys):
            left, right = right ^ self._round(left, key), left
        return (left << 31) | right
