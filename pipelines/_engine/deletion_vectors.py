"""Delta deletion vectors: the rows of a data file a table no longer holds, as the Delta protocol stores them.

A deletion vector (DV) is a 64-bit Roaring bitmap of row positions ("RoaringBitmapArray": a magic
number, then the bitmap in Roaring's portable 64-bit format), kept in a file of the table's folder
beside its data (`deletion_vector_<uuid>.bin`: a version byte, then for each DV its size, its bytes
and their CRC-32) and named from an `add` action by a descriptor (storage type `u`, the file's UUID
in Z85). Readers that know the feature (delta-rs, delta-kernel, Spark, Databricks) skip those rows.
"""

import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyroaring import BitMap64

MAGIC = 1681511377
"""The RoaringBitmapArray format's first four bytes (little endian): the portable 64-bit serialization follows."""
FILE_FORMAT_VERSION = 1
Z85_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
Z85_VALUES = {character: value for value, character in enumerate(Z85_ALPHABET)}
UUID_Z85_LENGTH = 20
"""A UUID's 16 bytes in Z85; characters before them in a descriptor's path are a folder prefix."""


class DeletionVectorError(ValueError):
    """A deletion vector that cannot be read as the protocol defines it."""


def z85_encode(data: bytes) -> str:
    """ZeroMQ's Base85 (RFC 32), which the protocol uses because it is JSON-friendly; whole 4-byte groups only."""
    if len(data) % 4:
        raise ValueError(f"Z85 encodes whole groups of 4 bytes, not {len(data)}")
    characters = []
    for (word,) in struct.iter_unpack(">I", data):
        group = []
        for _ in range(5):
            word, digit = divmod(word, 85)
            group.append(Z85_ALPHABET[digit])
        characters.extend(reversed(group))
    return "".join(characters)


def z85_decode(text: str) -> bytes:
    if len(text) % 5:
        raise DeletionVectorError(f"Z85 text of {len(text)} characters is not whole groups of 5")
    words = []
    for start in range(0, len(text), 5):
        word = 0
        for character in text[start : start + 5]:
            if character not in Z85_VALUES:
                raise DeletionVectorError(f"{character!r} is not a Z85 character")
            word = word * 85 + Z85_VALUES[character]
        if word > 0xFFFFFFFF:
            raise DeletionVectorError(f"Z85 group {text[start : start + 5]!r} exceeds 32 bits")
        words.append(word)
    return struct.pack(f">{len(words)}I", *words)


def serialize(positions: BitMap64) -> bytes:
    """A bitmap of row positions in the RoaringBitmapArray format."""
    return struct.pack("<I", MAGIC) + positions.serialize()


def deserialize(data: bytes) -> BitMap64:
    if len(data) < 4 or struct.unpack("<I", data[:4])[0] != MAGIC:
        raise DeletionVectorError("not a RoaringBitmapArray in the portable format (its magic number differs)")
    try:
        return BitMap64.deserialize(data[4:])
    except ValueError as error:
        raise DeletionVectorError(f"unreadable Roaring bitmap: {error}") from None


@dataclass(frozen=True)
class Descriptor:
    """Where a data file's DV is (the `deletionVector` of its `add` and `remove` actions) and how many rows it holds."""

    path_or_inline: str
    offset: int
    size: int
    cardinality: int
    storage_type: str = "u"

    @classmethod
    def from_action(cls, action: dict) -> "Descriptor":
        try:
            return cls(
                path_or_inline=action["pathOrInlineDv"],
                offset=action.get("offset") or 0,
                size=action["sizeInBytes"],
                cardinality=action["cardinality"],
                storage_type=action["storageType"],
            )
        except KeyError as missing:
            raise DeletionVectorError(f"deletion vector descriptor without {missing}: {action}") from None

    def action(self) -> dict:
        described = {"storageType": self.storage_type, "pathOrInlineDv": self.path_or_inline}
        if self.storage_type != "i":
            described["offset"] = self.offset
        return {**described, "sizeInBytes": self.size, "cardinality": self.cardinality}

    @property
    def unique_id(self) -> str:
        """What tells this DV from another of the same data file (the protocol's derived `uniqueId`)."""
        base = f"{self.storage_type}{self.path_or_inline}"
        return base if self.storage_type == "i" else f"{base}@{self.offset}"

    def file(self, table_root: Path) -> Path:
        """The DV file, for storage types `u` (relative to the table, from a UUID) and `p` (absolute)."""
        if self.storage_type == "p":
            return Path(self.path_or_inline.removeprefix("file://"))
        if self.storage_type != "u":
            raise DeletionVectorError(f"an inline deletion vector has no file ({self.unique_id})")
        prefix, encoded = self.path_or_inline[:-UUID_Z85_LENGTH], self.path_or_inline[-UUID_Z85_LENGTH:]
        return table_root / prefix / f"deletion_vector_{uuid.UUID(bytes=z85_decode(encoded))}.bin"

    def read(self, table_root: Path) -> BitMap64:
        """The row positions this DV deletes, with the size, checksum and cardinality checked."""
        if self.storage_type == "i":
            data = z85_decode(self.path_or_inline)[: self.size]
        else:
            with open(self.file(table_root), "rb") as stored:
                stored.seek(self.offset)
                header = stored.read(4)
                data = stored.read(self.size)
                checksum = stored.read(4)
            if len(header) < 4 or struct.unpack(">I", header)[0] != self.size or len(data) != self.size:
                raise DeletionVectorError(f"{self.file(table_root)}: no DV of {self.size} bytes at {self.offset}")
            if len(checksum) < 4 or struct.unpack(">I", checksum)[0] != zlib.crc32(data):
                raise DeletionVectorError(f"{self.file(table_root)}: the DV at {self.offset} fails its checksum")
        positions = deserialize(data)
        if len(positions) != self.cardinality:
            raise DeletionVectorError(
                f"deletion vector {self.unique_id} holds {len(positions)} rows, its descriptor says {self.cardinality}"
            )
        return positions


def write_file(table_root: Path, bitmaps: list[BitMap64]) -> list[Descriptor]:
    """Write DVs into one new file of the table's folder (written whole and synced before any commit
    names it; a file no commit names is removed by a vacuum). Returns their descriptors, in order."""
    file_id = uuid.uuid4()
    path = table_root / f"deletion_vector_{file_id}.bin"
    name = z85_encode(file_id.bytes)
    descriptors, chunks, offset = [], [bytes([FILE_FORMAT_VERSION])], 1
    for bitmap in bitmaps:
        data = serialize(bitmap)
        chunks.append(struct.pack(">I", len(data)) + data + struct.pack(">I", zlib.crc32(data)))
        descriptors.append(Descriptor(name, offset, len(data), len(bitmap)))
        offset += len(data) + 8
    with open(path, "xb") as stored:
        stored.write(b"".join(chunks))
        stored.flush()
        os.fsync(stored.fileno())
    return descriptors


def positions_array(bitmap: BitMap64) -> np.ndarray:
    return np.frombuffer(bitmap.to_array(), dtype=np.uint64).astype(np.int64)
