"""Media: the photos, documents and floor plans of properties and projects, as MediaResponse records.

Media ids are derived from (owner, index, category, slot, times replaced), so a media
edit replaces one photo with a new id while the rest keep theirs.
"""

from functools import lru_cache

import orjson

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import Stamp, timestamp
from ingestion.sandbox.generators.context import EntityFamily, RecordContext
from ingestion.sandbox.generators.reference import ReferenceGenerator
from ingestion.sandbox.identity import format_uuid, mix64, text_key

MEDIA_HOST = "https://sandbox.qobrix.example"
THUMBNAIL_SIZES = ("huge", "xlarge", "large", "medium", "small", "tiny")
CATEGORY_INDEX = {(name, model): i for i, (name, _, model, _) in enumerate(catalog.MEDIA_CATEGORIES)}
FILE_MASK = 0x5A5A5A5A << 96
"""Flips bits of a media id (outside the version and variant bits) to make its file's id."""
MEDIA_JSON = (
    '{"id":"%s","category_id":"%s","category":%s,"related_model":"%s","related_id":"%s","media_type":"upload",'
    '"reference_id":"%s","display_order":%d,"created":"%s","modified":"%s","file":{"id":"%s","filename":"%s",'
    '"original_filename":"%s","original_url":null,"filesystem":"s3","mime_type":"%s","filesize":%d,'
    '"created":"%s","modified":"%s","href":"%s/%s","thumbnails":%s}}'
)
"""One MediaResponse as JSON, filled positionally (the same record `MediaGenerator.items` builds as a dict)."""
THUMBNAILS_JSON = "{" + ",".join(f'"{size}":"/files/thumbnails/{size}/%s"' for size in THUMBNAIL_SIZES) + "}"


class MediaGenerator(EntityFamily):
    """Media items of properties and projects, as dicts or as JSON text (the server's fast path)."""

    def __init__(self, context: RecordContext, reference: ReferenceGenerator) -> None:
        super().__init__(context)
        self.reference = reference

    @lru_cache(maxsize=1024)
    def category(self, name: str, related_model: str) -> tuple[dict, str]:
        """The media category record every item of the category embeds, and its JSON (made once)."""
        index = CATEGORY_INDEX.get((name, related_model))
        record = self.reference.media_category(index, self.base_stamp("media/categories", index))
        return record, orjson.dumps(record).decode()

    def counts(self, owner: str, index: int) -> dict[str, int]:
        bits = mix64(self.keys["media"] ^ text_key(owner) ^ index)
        if owner == "projects":
            return {"photos": 3 + bits % 6, "documents": bits >> 8 & 1, "floorplans": (bits >> 12) % 4}
        return {
            "photos": 4 + bits % 11,
            "documents": (0, 0, 1, 2)[bits >> 8 & 3],
            "floorplans": (0, 0, 1, 2)[bits >> 12 & 3],
        }

    def slots(self, owner: str, index: int, stamp: Stamp, category: str) -> list[tuple]:
        """(media id, file id, display order, upload time, is a PDF, file size) of each media item.

        Each media edit (`stamp.media_version`) replaces one photo, in turn, with a new one.
        """
        count = self.counts(owner, index)[category]
        if not count:
            return []
        owner_code = 0 if owner == "properties" else 1
        kind_code = catalog.MEDIA_CATEGORY_NAMES.index(category)
        base = mix64(self.keys["media"] ^ mix64(((index * 2 + owner_code) * 4 + kind_code) * 0x9E3779B1))
        first_upload = timestamp(stamp.created)
        later_upload = timestamp(stamp.last_media_update or stamp.modified)
        slots = []
        for slot in range(count):
            replaced = (
                (stamp.media_version - 1 - slot) // count + 1
                if category == "photos" and stamp.media_version > slot
                else 0
            )
            high = mix64(base + slot * 0x632BE59BD9B4E019 + replaced * 0x85EBCA77C2B2AE63)
            value = ((high << 64) | (high ^ base)) & ~(0xF << 76) & ~(0b11 << 62) | (0x4 << 76) | (0b10 << 62)
            is_pdf = category == "documents" or (category == "floorplans" and slot % 2 == 1)
            slots.append(
                (
                    format_uuid(value),
                    format_uuid(value ^ FILE_MASK),
                    slot,
                    later_upload if replaced else first_upload,
                    is_pdf,
                    180_000 + high % 2_500_000,
                )
            )
        return slots

    def items(self, owner: str, index: int, stamp: Stamp, category: str) -> list[dict]:
        """The media of one category of a property or project, in display order (as MediaResponse)."""
        related_model = "Properties" if owner == "properties" else "Projects"
        category_record, _ = self.category(category, related_model)
        owner_id = self.id(owner, index)
        folder = f"{MEDIA_HOST}/files/{related_model.lower()}/{owner_id}"
        items = []
        for media_id, file_id, slot, uploaded, is_pdf, filesize in self.slots(owner, index, stamp, category):
            extension = "pdf" if is_pdf else "jpg"
            filename = f"{media_id}.{extension}"
            items.append(
                {
                    "id": media_id,
                    "category_id": category_record["id"],
                    "category": category_record,
                    "related_model": related_model,
                    "related_id": owner_id,
                    "media_type": "upload",
                    "reference_id": file_id,
                    "display_order": slot,
                    "created": uploaded,
                    "modified": uploaded,
                    "file": {
                        "id": file_id,
                        "filename": filename,
                        "original_filename": f"{category}-{slot + 1}.{extension}",
                        "original_url": None,
                        "filesystem": "s3",
                        "mime_type": "application/pdf" if is_pdf else "image/jpeg",
                        "filesize": filesize,
                        "created": uploaded,
                        "modified": uploaded,
                        "href": f"{folder}/{filename}",
                        "thumbnails": {}
                        if is_pdf
                        else {size: f"/files/thumbnails/{size}/{filename}" for size in THUMBNAIL_SIZES},
                    },
                }
            )
        return items

    def items_json(self, owner: str, index: int, stamp: Stamp, category: str) -> bytes:
        """`items(...)` as JSON array members (no brackets), from a text template: the fast path."""
        related_model = "Properties" if owner == "properties" else "Projects"
        category_record, category_json = self.category(category, related_model)
        category_id = category_record["id"]
        owner_id = self.id(owner, index)
        folder = f"{MEDIA_HOST}/files/{related_model.lower()}/{owner_id}"
        items = []
        for media_id, file_id, slot, uploaded, is_pdf, filesize in self.slots(owner, index, stamp, category):
            filename = f"{media_id}.pdf" if is_pdf else f"{media_id}.jpg"
            items.append(
                MEDIA_JSON
                % (
                    media_id, category_id, category_json, related_model, owner_id, file_id, slot, uploaded, uploaded,
                    file_id, filename, f"{category}-{slot + 1}.{'pdf' if is_pdf else 'jpg'}",
                    "application/pdf" if is_pdf else "image/jpeg", filesize, uploaded, uploaded, folder, filename,
                    "{}" if is_pdf else THUMBNAILS_JSON % ((filename,) * len(THUMBNAIL_SIZES)),
                )
            )  # fmt: skip
        return ",".join(items).encode()
