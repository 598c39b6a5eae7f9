"""Qobrix-shaped records for every entity, each a pure function of (seed, entity, index, stamp).

Nothing is stored: a sandbox of 1,000,000 properties needs no more memory than one of
1,000. References are computed forward from indices (a property's agent, seller,
project, location), so every reference points at a record that exists.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache

import orjson

from ingestion.sandbox import catalog
from ingestion.sandbox.identity import IdCodec, format_uuid, mix64, rng_for, text_key, unit


def weighted(values: list, weights: list[int]) -> tuple:
    """A lookup table drawing `values` with `weights`: `table[int(rng.random() * len(table))]` (fast)."""
    return tuple(value for value, weight in zip(values, weights, strict=True) for _ in range(weight))


def draw(rng, table: tuple):
    return table[int(rng.random() * len(table))]


HISTORY_START = datetime(2024, 1, 1, tzinfo=UTC)
"""Creation time of the first generated record of every entity."""
HISTORY_END = datetime(2026, 1, 1, tzinfo=UTC)
"""The sandbox clock at step 0: every generated record was created and modified before it."""
LOOKUPS_CREATED = datetime(2023, 6, 1, tzinfo=UTC)
MEDIA_HOST = "https://sandbox.qobrix.example"

ENTITIES = (
    "properties", "agents", "users", "contacts", "property-viewings", "meetings", "opportunities", "projects",
    "project-features", "property-features", "locations", "property-types", "property-subtypes", "media/categories",
    "bayut-locations", "bazaraki-locations", "spitogatos-locations", "property-finder-a-e-locations",
)  # fmt: skip
ACTIVE_ENTITIES = (
    "properties",
    "agents",
    "users",
    "contacts",
    "property-viewings",
    "meetings",
    "opportunities",
    "projects",
)
"""Entities whose records are created and edited throughout the history (the rest are lookups)."""
PORTAL_ENTITIES = ("bayut-locations", "bazaraki-locations", "spitogatos-locations", "property-finder-a-e-locations")
"""Portal lookups carry no timestamps: they cannot be filtered by `modified`."""

PROPERTY_TYPE_CODES = [code for code, _, _ in catalog.PROPERTY_TYPES]
SUBTYPES = [(code, label, type_code) for type_code, rows in catalog.PROPERTY_SUBTYPES.items() for code, label in rows]
SUBTYPE_LABELS = {code: label for code, label, _ in SUBTYPES}
PROPERTY_FEATURE_ROWS = [
    (field, code, label) for field, rows in catalog.PROPERTY_FEATURES.items() for code, label in rows
]
PROJECT_FEATURE_ROWS = [
    (field, code, label) for field, rows in catalog.PROJECT_FEATURES.items() for code, label in rows
]
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
"""One MediaResponse as JSON, filled positionally (the same record `Generator.media` builds as a dict)."""
THUMBNAILS_JSON = "{" + ",".join(f'"{size}":"/files/thumbnails/{size}/%s"' for size in THUMBNAIL_SIZES) + "}"
BLOCK_VARIANTS = 97
"""Buildings pooled per property type (see `Generator.property_block`)."""
SALE_RENT = ["for_sale", "for_rent", "for_sale_and_rent", "for_management", "for_auction"]
SALE_RENT_WEIGHTS = [60, 25, 8, 4, 3]
STATUSES = ["available", "reserved", "under_offer", "sold", "rented", "withdrawn", "pending"]
STATUS_WEIGHTS = [55, 8, 7, 10, 8, 6, 6]
RENT_FREQUENCIES = ["Monthly", "Monthly", "Monthly", "Yearly", "Weekly", "Quarterly", "Daily", "Monthly"]
ADJECTIVES = catalog.PROPERTY_ADJECTIVES[:8]
TYPE_TABLE = weighted(PROPERTY_TYPE_CODES, catalog.PROPERTY_TYPE_WEIGHTS)
SALE_RENT_TABLE = weighted(SALE_RENT, SALE_RENT_WEIGHTS)
STATUS_TABLE = weighted(STATUSES, STATUS_WEIGHTS)
BEDROOMS_TABLE = weighted(list(range(1, 7)), [15, 30, 28, 15, 8, 4])
FEATURE_COUNT_TABLE = weighted([0, 1, 2, 3], [35, 30, 25, 10])
LETTING = ("for_rent", "for_sale_and_rent", "for_management")
PHONE_PREFIXES = {"CY": "+357", "GR": "+30", "MT": "+356", "PT": "+351", "ES": "+34", "AE": "+971"}
CONTACT_ROLES = {"agency": "Agency", "agent": "Agent", "user": "Staff", "developer": "Developer"}
EDIT_SALT = 0xED17
"""Salts the random stream of what an edit changes, apart from what never changes."""
RESIDENTIAL = {"apartment", "house"}
COMMERCIAL = {"office", "retail", "industrial", "hotel", "building"}


@dataclass(frozen=True)
class Sizes:
    """How many records of each entity a sandbox of `properties` properties holds, and their blocks."""

    properties: int

    @property
    def agents(self) -> int:
        return max(4, self.properties // 200)

    @property
    def agencies(self) -> int:
        """The first agents are agencies (offices); the rest are individual agents of one of them."""
        return max(1, self.agents // 5)

    @property
    def users(self) -> int:
        return max(4, self.properties // 150)

    @property
    def developers(self) -> int:
        return max(2, self.properties // 120)

    @property
    def clients(self) -> int:
        return max(10, self.properties // 2)

    @property
    def contacts(self) -> int:
        """Contact blocks: agents' primary contacts, users' contacts, developers, then clients."""
        return self.agents + self.users + self.developers + self.clients

    @property
    def projects(self) -> int:
        return max(2, self.properties // 40)

    @property
    def viewings(self) -> int:
        return self.properties // 2

    @property
    def meetings(self) -> int:
        """The first `viewings` meetings are the viewings' meetings; the rest are other appointments."""
        return self.viewings + self.viewings // 4

    @property
    def opportunities(self) -> int:
        return max(5, self.properties // 4)

    def count(self, entity: str) -> int:
        """Base records of `entity` (before any created by `advance`)."""
        return self.counts[entity]

    @cached_property
    def counts(self) -> dict[str, int]:
        fixed = {
            "project-features": len(PROJECT_FEATURE_ROWS),
            "property-features": len(PROPERTY_FEATURE_ROWS),
            "locations": len(catalog.LOCATIONS),
            "property-types": len(catalog.PROPERTY_TYPES),
            "property-subtypes": len(SUBTYPES),
            "media/categories": len(catalog.MEDIA_CATEGORIES),
            "bayut-locations": len(catalog.BAYUT_HIERARCHIES),
            "bazaraki-locations": len(catalog.LOCATIONS) - 12,
            "spitogatos-locations": 12,
            "property-finder-a-e-locations": len(catalog.PROPERTY_FINDER_AE_NAMES),
        }
        scaled = {
            entity: getattr(self, {"property-viewings": "viewings"}.get(entity, entity))
            for entity in ENTITIES
            if entity not in fixed
        }
        return {**fixed, **scaled}

    def meeting_of_viewing(self, viewing: int) -> int:
        """Each viewing has its own meeting; viewings created later get meetings created with them."""
        return viewing if viewing < self.viewings else self.meetings + (viewing - self.viewings)

    def viewing_of_meeting(self, meeting: int) -> int | None:
        if meeting < self.viewings:
            return meeting
        if meeting >= self.meetings:
            return self.viewings + (meeting - self.meetings)
        return None

    def client_contact(self, n: int) -> int:
        return self.agents + self.users + self.developers + n % self.clients

    def developer_contact(self, n: int) -> int:
        return self.agents + self.users + n % self.developers

    def viewed_property(self, viewing: int) -> int:
        """Viewings go to every third property (the others can be hard-deleted without orphaning one)."""
        return 3 * (int(unit(0x5EED, viewing) * 2**32) % max(1, -(-self.properties // 3)))


@dataclass(frozen=True)
class Block:
    """Fields shared by many records, with their JSON (object members, no braces) made once."""

    fields: dict
    json: bytes
    meta: dict

    @classmethod
    def of(cls, fields: dict, meta: dict | None = None) -> "Block":
        return cls(fields=fields, json=orjson.dumps(fields)[1:-1], meta=meta or {})


PROPERTY_CONSTANTS = Block.of(
    {"original_name": None, "original_website_url": None, "campaign_id": None, "group_id": None, "cloned_from": None,
     "source_description": None, "custom_bazaraki_chosen_phone": None}
)  # fmt: skip


@dataclass(frozen=True)
class Stamp:
    """The state of one record version: when it was made and changed, and how often."""

    created: datetime
    modified: datetime
    version: int = 0
    trashed: datetime | None = None
    media_version: int = 0
    last_media_update: datetime | None = None


def timestamp(moment: datetime | None) -> str | None:
    """Qobrix's usual wire format: ISO 8601, seconds, with offset (sandbox times are whole UTC seconds)."""
    return None if moment is None else moment.isoformat()


def day(moment: datetime) -> str:
    return moment.date().isoformat()


def money(value: float) -> float:
    return float(round(value, -2) if value >= 10_000 else round(value, -1))


class Generator:
    def __init__(self, seed: int, sizes: Sizes) -> None:
        self.seed = seed
        self.sizes = sizes
        self.codecs = {entity: IdCodec(seed, entity) for entity in (*ENTITIES, "media", "files")}
        self.keys = {entity: text_key(seed, entity) for entity in (*ENTITIES, "media")}
        self.id = lru_cache(maxsize=200_000)(self._id)

    def _id(self, entity: str, index: int) -> str:
        return self.codecs[entity].encode(index)

    def index_of(self, entity: str, record_id: str) -> int | None:
        return self.codecs[entity].decode(record_id)

    # --- time -------------------------------------------------------------------------------
    @cached_property
    def _timelines(self) -> dict[str, tuple[float, float, float]]:
        """Per entity: (first creation, seconds between creations, how far after creation the last edit falls)."""
        timelines = {}
        for entity in ENTITIES:
            count = max(self.sizes.count(entity), 1)
            activity = entity in ACTIVE_ENTITIES
            start, end = (HISTORY_START, HISTORY_END) if activity else (LOOKUPS_CREATED, HISTORY_START)
            spacing = (end - start).total_seconds() / count
            timelines[entity] = (start.timestamp(), spacing, spacing * 0.9)
        return timelines

    def base_created(self, entity: str, index: int) -> datetime:
        """Creation time of base record `index`, evenly spread in index order over the history."""
        start, spacing, _ = self._timelines[entity]
        return datetime.fromtimestamp(int(start + spacing * index), UTC)

    def base_modified(self, entity: str, index: int) -> datetime:
        """Last change before the sandbox started; increases strictly with the index."""
        start, spacing, reach = self._timelines[entity]
        return datetime.fromtimestamp(int(start + spacing * index + reach * unit(self.keys[entity], index)), UTC)

    def base_stamp(self, entity: str, index: int) -> Stamp:
        return Stamp(created=self.base_created(entity, index), modified=self.base_modified(entity, index))

    # --- records ----------------------------------------------------------------------------
    def record(self, entity: str, index: int, stamp: Stamp) -> dict:
        """Record `index` as a Qobrix list returns it with `expand=false&media=false`."""
        builder = getattr(self, "_" + entity.replace("-", "_").replace("/", "_"))
        return builder(index, stamp)

    def edit_rng(self, entity: str, index: int, version: int):
        """The random source of what version `version` of a record changes (status, price...)."""
        return rng_for(self.keys[entity] ^ EDIT_SALT, index, version)

    def audit(self, index: int, stamp: Stamp, entity: str) -> dict:
        users = self.sizes.users
        creator = int(unit(self.keys[entity] ^ 0xC0FFEE, index) * users)
        editor = (creator + stamp.version) % users
        return {
            "created": timestamp(stamp.created),
            "created_by": self.id("users", creator),
            "modified": timestamp(stamp.modified),
            "modified_by": self.id("users", editor),
            "trashed": timestamp(stamp.trashed),
        }

    def location_row(self, index: int) -> tuple:
        return catalog.LOCATIONS[index % len(catalog.LOCATIONS)]

    def _properties(self, index: int, stamp: Stamp) -> dict:
        head, listing, building = self.property_parts(index, stamp)
        return {**head, **listing.fields, **building.fields, **PROPERTY_CONSTANTS.fields}

    def render_property(self, index: int, stamp: Stamp) -> tuple[bytes, dict]:
        """The property as JSON object members (no braces), spliced from cached blocks, and its head."""
        head, listing, building = self.property_parts(index, stamp)
        members = b",".join((orjson.dumps(head)[1:-1], listing.json, building.json, PROPERTY_CONSTANTS.json))
        return members, head

    def property_parts(self, index: int, stamp: Stamp) -> tuple[dict, "Block", "Block"]:
        """A property as (fields drawn for this record, pooled listing block, pooled building block)."""
        sizes, key = self.sizes, self.keys["properties"]
        rng = rng_for(key, index)
        edit = self.edit_rng("properties", index, stamp.version)
        type_code = draw(rng, TYPE_TABLE)
        building = self.property_block(type_code, rng.randrange(BLOCK_VARIANTS))
        residential, land = type_code in RESIDENTIAL, type_code == "land"
        project = (
            int(unit(self.keys["projects"], index) * sizes.projects) if residential and rng.random() < 0.3 else None
        )
        location = self.project_location(project) if project is not None else rng.randrange(len(catalog.LOCATIONS))
        country, district, area, subarea, lat, lon, post_code = catalog.LOCATIONS[location]
        sale_rent = draw(rng, SALE_RENT_TABLE)
        listing = self.listing_block(rng.randrange(BLOCK_VARIANTS), sale_rent, country == "CY")
        status = draw(edit, STATUS_TABLE)
        if status == "rented" and sale_rent == "for_sale":
            status = "sold"
        elif status == "sold" and sale_rent == "for_rent":
            status = "rented"
        internal = building.meta["internal_area_amount"]
        size_for_price = internal or (building.meta["plot_area_amount"] or 500) / 4
        base_price = size_for_price * rng.uniform(1800, 6500) * (1.6 if country in ("MT", "AE") else 1.0)
        base_rent = size_for_price * rng.uniform(9, 22)
        lets = sale_rent in LETTING

        def prices(version: int) -> tuple[float | None, float | None]:
            """Each edit moves the asking prices by -10%..+8% of the original."""
            factor = 1.0 if version == 0 else 0.9 + 0.18 * unit(key ^ mix64(version), index)
            return (
                money(base_price * factor) if sale_rent != "for_rent" else None,
                money(base_rent * factor) if lets else None,
            )

        selling, renting = prices(stamp.version)
        previous = prices(stamp.version - 1) if stamp.version else (None, None)
        price_changed = timestamp(stamp.modified) if stamp.version and previous != (selling, renting) else None
        listing_day = stamp.created - timedelta(days=rng.randrange(21))
        auction = sale_rent == "for_auction"
        bedrooms, subtype_label = building.meta["bedrooms"], building.meta["property_subtype_label"]
        cyprus = country == "CY"
        flags = rng.getrandbits(32)
        head = {
            "id": self.id("properties", index),
            "ref": index + 1,
            "legacy_id": f"LEG-{100000 + index}" if flags & 3 == 0 else None,
            "name": f"{ADJECTIVES[flags >> 8 & 7]} {f'{bedrooms}-Bedroom ' if bedrooms else ''}{subtype_label} in {subarea}",  # noqa: E501
            "original_ref": f"EXT{10000 + index % 90000}" if flags & 28 == 0 else None,
            "property_type": type_code,
            "status": status,
            "sale_rent": sale_rent,
            "website_status": "published" if status in ("available", "reserved", "under_offer") else "unpublished",
            "website_listing_date": timestamp(listing_day) if status == "available" else None,
            "website_url": f"https://www.example-realty.com/property/{index + 1}",
            "list_selling_price_amount": selling,
            "list_selling_price_modified": price_changed if selling != previous[0] else None,
            "previous_list_selling_price": previous[0] if previous[0] != selling else None,
            "list_rental_price_amount": renting,
            "list_rental_price_modified": price_changed if renting != previous[1] else None,
            "previous_list_rental_price": previous[1] if previous[1] != renting else None,
            "price_per_square": round(selling / internal, 2) if selling and internal else None,
            "price_field_amount": selling if selling is not None else renting,
            "reserve_price_amount": money(selling * 0.8) if auction and selling else None,
            "starting_bidding_amount": money(selling * 0.6) if auction and selling else None,
            "auction_start_date": timestamp(listing_day + timedelta(days=30)) if auction else None,
            "auction_end_date": timestamp(listing_day + timedelta(days=37)) if auction else None,
            "listing_date": listing_day.date().isoformat(),
            "engagement_letter_date": timestamp(listing_day - timedelta(days=1 + (flags >> 17 & 15)))
            if flags >> 21 & 1
            else None,
            "inspection_date": timestamp(listing_day - timedelta(days=1 + (flags >> 22 & 7)))
            if flags >> 25 & 3 == 0
            else None,
            "description": building.meta["description"].format(subarea=subarea, district=district),
            "short_description": f"{subtype_label} in {subarea}, {district}",
            "street": f"{1 + index % 249} {catalog.STREETS[(flags >> 27) % len(catalog.STREETS)]}",
            "city": area,
            "municipality": subarea,
            "state": district,
            "post_code": post_code,
            "country": country,
            "coordinates": f"{lat + rng.uniform(-0.02, 0.02):.6f},{lon + rng.uniform(-0.02, 0.02):.6f}",
            "location": self.id("locations", location),
            "project": self.id("projects", project) if project is not None else None,
            "developer_id": self.id("contacts", sizes.developer_contact(project)) if project is not None else None,
            "inherit_project_media": project is not None and flags >> 6 & 3 != 0,
            "agent": self.id("agents", int(unit(self.keys["agents"], index) * sizes.agents)),
            "salesperson": self.id("users", int(unit(self.keys["users"], index) * sizes.users)),
            "seller": self.id(
                "contacts", sizes.client_contact(int(unit(self.keys["contacts"], index) * sizes.clients))
            ),
            "construction_stage": ("offplans", "construction_phase", "completed", "resale")[flags >> 19 & 3]
            if project is not None
            else (None if land else "resale"),
            "new_build": project is not None or flags >> 23 & 7 == 0,
            "pets_allowed": bool(flags >> 26 & 1) if residential and renting else None,
            "featured": edit.random() < 0.05,
            "featured_priority": edit.randint(1, 10) if edit.random() < 0.05 else None,
            "property_of_the_month": edit.random() < 0.01,
            "video_link": f"https://www.youtube.com/watch?v=yt{index:09d}" if flags & 0x70 == 0 else None,
            "virtual_tour_link": f"https://my.matterport.com/show/?m=mp{index:09d}" if flags & 0x380 == 0 else None,
            "last_media_update": timestamp(stamp.last_media_update or stamp.created),
            "custom_bazaraki_registration_block": 1 + index % 99 if cyprus and flags >> 7 & 3 == 0 else None,
            "custom_bazaraki_registration_number": 1000 + index % 98999 if cyprus and flags >> 7 & 3 == 0 else None,
            "custom_bazaraki_url": f"https://www.bazaraki.com/adv/{4000000 + index}/"
            if cyprus and flags >> 20 & 1
            else None,
            "custom_bazaraki_location": self.id("bazaraki-locations", location % sizes.count("bazaraki-locations"))
            if cyprus
            else None,
            "custom_sir_code": f"SIR{index + 1:06d}" if flags >> 24 & 1 else None,
            **self.audit(index, stamp, "properties"),
        }
        return head, listing, building

    @lru_cache(maxsize=BLOCK_VARIANTS * len(SALE_RENT) * 2)
    def listing_block(self, variant: int, sale_rent: str, cyprus: bool) -> "Block":
        """How a listing is marketed: one of BLOCK_VARIANTS per (sale/rent kind, in Cyprus or not)."""
        rng = rng_for(self.keys["properties"] ^ text_key("listing", sale_rent, cyprus), variant)
        selling, lets = sale_rent != "for_rent", sale_rent in LETTING
        return Block.of(
            {
                "rent_frequency": rng.choice(RENT_FREQUENCIES) if lets else None,
                "price_qualifier": rng.choice(["fixed", "fixed", "fixed", "poa"]) if selling else None,
                "plus_vat": rng.random() < 0.15 if selling else None,
                "tenancy_type": rng.choice(["Long Term", "Long Term", "Short Term", "Not Specified"]) if lets else None,
                "minimum_tenancy": rng.choice([6, 12, 12, 24]) if lets else None,
                "geocode_type": rng.choice(["exact", "exact", "offset", "hidden"]),
                "source": rng.choice(["direct", "direct", "agent", "external_site"]),
                "direct_sources": rng.choice(
                    ["website", "walk_in", "cold_call", "social_media", None, None, "newsletter"]
                ),
                "key_holder_details": rng.choice([None, "Keys at office", "Owner holds keys", "Concierge"]),
                "custom_bazaraki_negotiable_price": rng.random() < 0.3 if cyprus else None,
                "custom_bazaraki_exchange": rng.random() < 0.05 if cyprus else None,
                "custom_bazaraki_online_viewing": rng.random() < 0.2 if cyprus else None,
                "custom_bazaraki_disallow_chat": rng.random() < 0.1 if cyprus else None,
                "custom_bazaraki_phone_hide": rng.random() < 0.1 if cyprus else None,
            }
        )

    @lru_cache(maxsize=len(PROPERTY_TYPE_CODES) * BLOCK_VARIANTS)
    def property_block(self, type_code: str, variant: int) -> "Block":
        """One of BLOCK_VARIANTS buildings of a type: rooms, areas, features, energy, distances.

        Pooling what describes the building keeps generation fast; every record still has
        its own location, price, status, people, dates and ids.
        """
        rng = rng_for(self.keys["properties"] ^ text_key(type_code), variant)
        residential, commercial, land = type_code in RESIDENTIAL, type_code in COMMERCIAL, type_code == "land"
        subtype_code, subtype_label = rng.choice(catalog.PROPERTY_SUBTYPES[type_code])
        bedrooms = None if not residential else (0 if subtype_code == "studio" else draw(rng, BEDROOMS_TABLE))
        internal = round(rng.uniform(35, 70) + (bedrooms or 1) * rng.uniform(25, 45), 1) if not land else None
        plot = round(rng.uniform(250, 5000), 1) if land or type_code == "house" else None
        floors_building = (
            rng.randint(2, 12)
            if type_code in ("apartment", "office", "building", "hotel")
            else (rng.randint(1, 3) if type_code == "house" else None)
        )
        floor = rng.randint(0, floors_building) if floors_building and type_code in ("apartment", "office") else None
        pick = self._features(rng)
        office = type_code == "office"
        fields = {
            "property_subtype": subtype_code,
            "bedrooms": bedrooms,
            "bathrooms": None if bedrooms is None else max(1, bedrooms - rng.randint(0, 1)),
            "wc_bathrooms": rng.randint(0, 2) if residential else (rng.randint(1, 4) if commercial else None),
            "living_rooms": rng.randint(1, 2) if residential else None,
            "kitchens": rng.randint(1, 2) if residential else (rng.randint(0, 1) if commercial else None),
            "kitchen_type": rng.choice(["open_plan", "separated"]) if residential else None,
            "kitchenette": rng.random() < 0.1 if residential or office else None,
            "office_spaces": rng.randint(1, 20) if office else None,
            "office_layout": rng.choice(["open_plan", "partitioned", "shell_and_core"]) if office else None,
            "conference": rng.random() < 0.5 if office else None,
            "server_room": rng.random() < 0.3 if office else None,
            "enclosed_office_room": rng.random() < 0.5 if office else None,
            "reception": rng.random() < 0.4 if commercial else None,
            "verandas": rng.randint(0, 3) if residential else None,
            "parking": rng.randint(0, 3) if not land else None,
            "covered_parking": rng.randint(0, 2) if not land else None,
            "uncovered_parking": rng.randint(0, 2) if not land else None,
            "customer_parking": rng.randint(0, 20) if commercial else None,
            "maids_room": rng.random() < 0.1 if residential else None,
            "store_room": rng.random() < 0.4 if residential else None,
            "storage_space": rng.random() < 0.3,
            "separate_laundry_room": rng.random() < 0.2 if residential else None,
            "home_office": rng.random() < 0.2 if residential else None,
            "floor_number": floor,
            "floors_building": floors_building,
            "storeys_max_floor": floors_building,
            "unit_number": f"{floor}{rng.randint(1, 9):02d}" if floor is not None else None,
            "floor_type": rng.choice(["marble", "tiles", "wooden_floors", "granite", "laminate", "parquet"])
            if not land
            else None,
            "height": round(rng.uniform(2.7, 3.5), 2) if not land else None,
            "internal_area_amount": internal,
            "covered_area_amount": round(internal * rng.uniform(1.0, 1.15), 1) if internal else None,
            "uncovered_area_amount": round(rng.uniform(5, 80), 1) if residential else None,
            "total_area_amount": round(internal * rng.uniform(1.1, 1.4), 1) if internal else plot,
            "covered_verandas_amount": round(rng.uniform(5, 40), 1) if residential else None,
            "uncovered_verandas_amount": round(rng.uniform(0, 30), 1) if residential else None,
            "plot_area_amount": plot,
            "garden_area_amount": round(plot * rng.uniform(0.2, 0.6), 1) if plot and type_code == "house" else None,
            "roof_garden_area_amount": round(rng.uniform(20, 120), 1) if subtype_code == "penthouse" else None,
            "frontage_amount": round(rng.uniform(8, 60), 1) if land or type_code == "retail" else None,
            "mezzanine_amount": round(rng.uniform(20, 150), 1) if type_code in ("retail", "industrial") else None,
            "storage_amount": round(rng.uniform(4, 30), 1) if rng.random() < 0.3 else None,
            "building_density": round(rng.uniform(40, 180), 1) if land else None,
            "coverage": rng.randint(30, 60) if land else None,
            "cover_factor": round(rng.uniform(20, 80), 1) if land else None,
            "town_planning_zone": rng.choice(
                ["residential", "commercial", "industrial", "agricultural", "tourist", "other"]
            )
            if land
            else None,
            "cadastral_reference": f"{rng.randint(1, 99)}/{rng.randint(100, 9999)}"
            if land or rng.random() < 0.2
            else None,
            "corner_plot": rng.random() < 0.15 if land else None,
            "land_locked": rng.random() < 0.05 if land else None,
            "registered_road": rng.random() < 0.8 if land else None,
            "right_of_way": rng.random() < 0.7 if land else None,
            "water": rng.random() < 0.8 if land else None,
            "electricity": rng.random() < 0.8 if land else None,
            "electricity_type": rng.choice(["single_phase", "three_phase", "industrial"]) if commercial else None,
            "construction_year": rng.randint(1975, 2026) if not land else None,
            "renovation_year": rng.randint(2010, 2025) if not land and rng.random() < 0.25 else None,
            "construction_type": rng.choice(["concrete", "concrete", "prefabricated", "metal"]) if not land else None,
            "energy_efficiency_grade": rng.choice(
                ["a", "a_plus", "b", "b_plus", "c", "d", "e", "pending_certification", "not_required"]
            )
            if not land
            else None,
            "energy_consumption_rating": rng.choice("abcdefg") if not land and rng.random() < 0.5 else None,
            "energy_consumption_value": round(rng.uniform(20, 300), 1) if not land and rng.random() < 0.5 else None,
            "energy_emission_rating": rng.choice("abcdefg") if not land and rng.random() < 0.5 else None,
            "energy_emission_value": round(rng.uniform(5, 80), 1) if not land and rng.random() < 0.5 else None,
            "heating_type": rng.choice(["autonomous_heating_system", "central_heating", "none"]) if not land else None,
            "heating_medium": rng.choice(
                ["electric_heating", "heat_pump", "underfloor_heating", "gas_heating_system", "oil", "solar"]
            )
            if not land
            else None,
            "cooling_type": rng.choice(["autonomous_cooling_system", "central_cooling"]) if not land else None,
            "furnished": rng.choice(["furnished", "semi_furnished", "optionally_furnished", "unfurnished"])
            if residential
            else None,
            "occupancy": rng.choice(["rented", "partially_rented", "unrented"])
            if commercial or type_code == "investment"
            else None,
            "ideal_for": rng.choice([None, "Families", "Investors", "Professionals", "Students", "Retirees"]),
            "licensed_for": rng.choice(["Restaurant", "Cafe", "Retail", "Offices"]) if type_code == "retail" else None,
            "business_transfer_or_sale": rng.random() < 0.2 if type_code == "retail" else None,
            "business_transfer_price": money(rng.uniform(20000, 300000))
            if type_code == "retail" and rng.random() < 0.2
            else None,
            "business_transfer_commercial_activity": rng.choice(
                ["restaurant", "coffee_shop", "bar", "bakery", "pharmacy"]
            )
            if type_code == "retail"
            else None,
            "sea_view": "sea" in pick["view"],
            "mountain_view": "mountain" in pick["view"],
            "beach_front": "beach_front" in pick["waterfront_features"],
            "abuts_green_area": rng.random() < 0.1,
            "elevated_area": rng.random() < 0.15,
            "private_swimming_pool": "private" in pick["pool_features"],
            "common_swimming_pool": "communal" in pick["pool_features"],
            "elevator": type_code in ("apartment", "office", "hotel", "building") and rng.random() < 0.7,
            "air_condition": not land and rng.random() < 0.8,
            "alarm": "alarm" in pick["security_features"],
            "smart_home": rng.random() < 0.1,
            "solar_water_heater": residential and rng.random() < 0.6,
            "concierge_reception": rng.random() < 0.05,
            "secure_door": rng.random() < 0.3,
            "fireplace": bool(pick["fireplace_features"]),
            "distance_from_beach": round(rng.uniform(50, 25000)),
            "distance_from_airport": round(rng.uniform(8000, 70000)),
            "distance_from_centre": round(rng.uniform(200, 20000)),
            "distance_from_school": round(rng.uniform(200, 5000)),
            "distance_from_shops": round(rng.uniform(50, 3000)),
            "distance_from_hospital": round(rng.uniform(500, 15000)),
            "distance_from_university": round(rng.uniform(1000, 30000)),
            "distance_from_rail_station": round(rng.uniform(500, 20000)) if rng.random() < 0.3 else None,
            "distance_from_tube_station": round(rng.uniform(300, 8000)) if rng.random() < 0.2 else None,
            "custom_distance_from_beach_amount": round(rng.uniform(0.1, 25), 1),
            "custom_distance_from_city_centre_amount": round(rng.uniform(0.2, 20), 1),
            "custom_distance_from_shops_amount": round(rng.uniform(0.1, 3), 1),
            "custom_distance_from_hospital_amount": round(rng.uniform(0.5, 15), 1),
            "custom_distance_from_university_amount": round(rng.uniform(1, 30), 1),
            "custom_distance_from_airport_amount": round(rng.uniform(8, 70), 1),
            "custom_distance_from_school_amount": round(rng.uniform(0.2, 5), 1),
            "custom_exclusive_listing": rng.random() < 0.25,
            "custom_a_place_in_the_sun_property_type": rng.choice(
                ["Apartment", "Villa", "Townhouse", "Penthouse", "Land", "Commercial", None]
            ),
            "custom_common_area_amount": round(rng.uniform(5, 40), 1) if rng.random() < 0.3 else None,
            "custom_presale": rng.random() < 0.05,
            "custom_roof_garden": subtype_code == "penthouse",
            "custom_commission": round(rng.uniform(1, 5), 1),
            "custom_property_view": rng.choice(
                ["Sea View", "Mountain View", "Pool View", "City View", "Garden View", None]
            ),
            "custom_resale": rng.random() < 0.5,
            "custom_loading_bay_amount": round(rng.uniform(20, 200), 1) if type_code == "industrial" else None,
            "custom_rightmove_url": None,
            "custom_turn_key": rng.random() < 0.2,
            "custom_delivery_date": None,
            "custom_heating": rng.random() < 0.5,
            "custom_sir_link": None,
            "custom_excluded_property": rng.random() < 0.02,
            "custom_properties_groups": [],
            "custom_white_goods": rng.random() < 0.4,
            **pick,
            **self._subtype_fields(type_code, subtype_label),
        }
        meta = {
            "property_subtype_label": subtype_label,
            "bedrooms": bedrooms,
            "internal_area_amount": internal,
            "plot_area_amount": plot,
            "description": self._description(rng, subtype_label, bedrooms, pick),
        }
        return Block.of(fields, meta)

    def _features(self, rng) -> dict[str, list[str]]:
        """Feature arrays (PropertyFeatures codes); about one in twenty codes is not a standard one."""
        chosen = {}
        for field_name, rows in catalog.PROPERTY_FEATURES.items():
            count = draw(rng, FEATURE_COUNT_TABLE)
            chosen[field_name] = sorted({code for code, _ in rng.sample(rows, min(count, len(rows)))})
        return chosen

    def _subtype_fields(self, type_code: str, subtype_label: str) -> dict:
        names = ("apartment", "house", "land", "office", "retail", "industrial", "hotel", "building", "investment")
        return {f"{name}_type": subtype_label if name == type_code else None for name in names}

    def _description(self, rng, subtype_label: str, bedrooms: int | None, pick: dict) -> str:
        """A description template; `{subarea}` and `{district}` are filled in per record."""
        parts = [
            f"A {rng.choice(catalog.PROPERTY_ADJECTIVES).lower()} {subtype_label.lower()} in {{subarea}}, {{district}}."
        ]
        if bedrooms:
            parts.append(f"It offers {bedrooms} bedroom{'s' if bedrooms != 1 else ''} and generous living spaces.")
        if pick["view"]:
            parts.append(f"Enjoy {' and '.join(pick['view'])} views.")
        if pick["pool_features"]:
            parts.append("The property has access to a swimming pool.")
        parts.append(
            rng.choice(
                ["Close to all amenities.", "Viewing is highly recommended.", "Ideal as a holiday home or investment."]
            )
        )
        return " ".join(parts)

    def project_location(self, project: int) -> int:
        return rng_for(self.keys["projects"], project).randrange(len(catalog.LOCATIONS))

    def _projects(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["projects"], index)
        location = self.project_location(index)
        country, district, area, subarea, lat, lon, post_code = self.location_row(location)
        name = f"{rng.choice(catalog.COMPANY_WORDS)} {rng.choice(catalog.PROJECT_NOUNS)}"
        start_price = money(rng.uniform(150_000, 900_000))
        stage = rng.choice(["offplans", "construction_phase", "completed"])
        features = rng.sample([code for code, _ in catalog.PROJECT_FEATURES["further_features"]], rng.randint(1, 4))
        return {
            "id": self.id("projects", index),
            "ref": index + 1,
            "legacy_id": None,
            "name": name,
            "abbreviation": "".join(word[0] for word in name.split()).upper(),
            "reference_code": f"PRJ-{index + 1:04d}",
            "type": rng.choice(["project", "project", "investment_package", "other"]),
            "housing_type": rng.choice(["residential", "residential", "commercial", "student"]),
            "availability_status": rng.choice(
                ["units_available", "units_available", "all_units_sold_rented", "project_under_management"]
            ),
            "construction_stage": stage,
            "completion_date": day(stamp.created + timedelta(days=rng.randint(90, 900))),
            "number_of_units": rng.randint(6, 180),
            "starting_price_from": start_price,
            "price_to": money(start_price * rng.uniform(1.5, 4)),
            "description": f"{name} is a {stage.replace('_', ' ')} development in {subarea}, {district}.",
            "short_description": f"New development in {subarea}",
            "amenities_description": "Residents enjoy " + ", ".join(f.replace("_", " ") for f in features) + ".",
            "location_description": f"Located in {subarea}, minutes from {area} centre.",
            "map_popup_description": name,
            "developer_id": self.id("contacts", self.sizes.developer_contact(index)),
            "assigned_to": self.id("users", index % self.sizes.users),
            "location": self.id("locations", location),
            "city": area,
            "municipality": subarea,
            "state": district,
            "post_code": post_code,
            "country": country,
            "street": f"{rng.randint(1, 200)} {rng.choice(catalog.STREETS)}",
            "street_2": None,
            "coordinates": f"{lat + rng.uniform(-0.01, 0.01):.6f},{lon + rng.uniform(-0.01, 0.01):.6f}",
            "distance_from_airport_amount": round(rng.uniform(8, 70), 1),
            "distance_from_beach_amount": round(rng.uniform(0.1, 20), 1),
            "distance_from_centre_amount": round(rng.uniform(0.2, 15), 1),
            "distance_from_hospital_amount": round(rng.uniform(0.5, 15), 1),
            "distance_from_rail_station_amount": None,
            "distance_from_school_amount": round(rng.uniform(0.2, 5), 1),
            "distance_from_shops_amount": round(rng.uniform(0.1, 3), 1),
            "distance_from_tube_station_amount": None,
            "distance_from_university_amount": round(rng.uniform(1, 30), 1),
            "energy_efficiency_grade": rng.choice(["a", "a_plus", "b"]),
            "featured": rng.random() < 0.2,
            "featured_priority": rng.randint(1, 5) if rng.random() < 0.2 else None,
            "project_listing_priority": rng.randint(1, 10),
            "further_features": sorted(features),
            "views": sorted(rng.sample([code for code, _ in catalog.PROJECT_FEATURES["views"]], rng.randint(0, 2))),
            "video_link": None,
            "video_links": None,
            "virtual_tour_link": None,
            "virtual_tour_links": None,
            "website_status": "published",
            "website_listing_date": timestamp(stamp.created),
            "website_url": f"https://www.example-realty.com/projects/{index + 1}",
            "last_media_update": timestamp(stamp.last_media_update or stamp.created),
            "custom_gym": "gym" in features,
            "custom_resale": False,
            "custom_tennis_court": rng.random() < 0.1,
            "custom_concierge_services": "concierge" in features,
            "custom_spa": "spa" in features,
            "custom_reception": rng.random() < 0.3,
            "custom_restaurant_cafe": rng.random() < 0.2,
            "custom_valet_parking": rng.random() < 0.05,
            "custom_list_selling_price_amount": start_price,
            "custom_heated_pool": rng.random() < 0.2,
            "custom_business_centre": rng.random() < 0.1,
            "custom_delivery_date": day(stamp.created + timedelta(days=rng.randint(180, 900))),
            "custom_active": True,
            "custom_security_service": rng.random() < 0.3,
            "custom_kids_play_area": "kids_club" in features,
            **self.audit(index, stamp, "projects"),
        }

    def _person(self, rng) -> tuple[str, str]:
        return rng.choice(catalog.FIRST_NAMES), rng.choice(catalog.LAST_NAMES)

    def contact_kind(self, index: int) -> str:
        sizes = self.sizes
        if index < sizes.agencies:
            return "agency"
        if index < sizes.agents:
            return "agent"
        if index < sizes.agents + sizes.users:
            return "user"
        if index < sizes.agents + sizes.users + sizes.developers:
            return "developer"
        return "client"

    def _contacts(self, index: int, stamp: Stamp) -> dict:
        """A contact: who they are drawn for this record; their preferences from a pooled block."""
        rng = rng_for(self.keys["contacts"], index)
        kind = self.contact_kind(index)
        bits = rng.getrandbits(32)
        is_company = kind in ("agency", "developer") or (kind == "client" and bits % 10 == 0)
        country, district, area, _, _, _, post_code = catalog.LOCATIONS[(bits >> 4) % len(catalog.LOCATIONS)]
        first = catalog.FIRST_NAMES[(bits >> 10) % len(catalog.FIRST_NAMES)]
        last = catalog.LAST_NAMES[(bits >> 16) % len(catalog.LAST_NAMES)]
        if is_company:
            word = catalog.COMPANY_WORDS[(bits >> 22) % len(catalog.COMPANY_WORDS)]
            name = f"{word} {catalog.COMPANY_SUFFIXES[(bits >> 27) % len(catalog.COMPANY_SUFFIXES)]}"
            slug = word.split()[0].lower()
            email = f"info{index}@{slug}.example.com"
        else:
            name = f"{first} {last}"
            email = f"{first.lower()}.{last.lower()}{index}@example.com"
        phone_country = PHONE_PREFIXES[country]
        number = 20000000 + mix64(bits) % 79999999
        preferences = self.contact_preferences(
            int(unit(self.keys["contacts"] ^ mix64(stamp.version), index) * BLOCK_VARIANTS)
        )
        return {
            "id": self.id("contacts", index),
            "ref": index + 1,
            "is_company": is_company,
            "name": name,
            "first_name": None if is_company else first,
            "last_name": None if is_company else last,
            "title": None if is_company else ("mr", "mrs", "ms", "dr", None)[(bits >> 28) % 5],
            "birthdate": None
            if is_company or bits >> 31
            else f"{1950 + (bits >> 8) % 50}-{1 + (bits >> 3) % 12:02d}-{1 + (bits >> 13) % 28:02d}",
            "nationality": None if is_company else catalog.NATIONALITIES[(bits >> 19) % len(catalog.NATIONALITIES)],
            "role": CONTACT_ROLES.get(kind) or ("Buyer", "Seller", "Tenant", "Landlord", "Lead")[(bits >> 7) % 5],
            "email": email,
            "phone": f"{phone_country} {number}",
            "phone_2": f"{phone_country} {90000000 + number % 9999999}" if bits >> 25 & 3 == 0 else None,
            "street": f"{1 + index % 249} {catalog.STREETS[(bits >> 14) % len(catalog.STREETS)]}",
            "city": area,
            "state": district,
            "post_code": post_code,
            "country": country,
            "registration_number": f"HE{100000 + index % 899999}" if is_company else None,
            "vat_number": f"{country}{10000000 + index % 89999999}L" if is_company else None,
            "website": f"https://www.{slug}.example.com" if is_company else None,
            "assigned_to": self.id("users", index % self.sizes.users),
            "preferred_language": catalog.LANGUAGES[(bits >> 20) % len(catalog.LANGUAGES)],
            "custom_contact_person_first_name": first if is_company else None,
            "custom_contact_person_last_name": last if is_company else None,
            **preferences,
            **self.audit(index, stamp, "contacts"),
        }

    @lru_cache(maxsize=BLOCK_VARIANTS)
    def contact_preferences(self, variant: int) -> dict:
        """How a contact wants to be reached; edits move a contact to another of these blocks."""
        rng = rng_for(self.keys["contacts"] ^ EDIT_SALT, variant)
        return {
            "preferred_contact_method": rng.choice(["phone", "email", "sms", "whatsapp", "Viber"]),
            "email_consent": rng.random() < 0.6,
            "sms_consent": rng.random() < 0.4,
            "phone_consent": rng.random() < 0.7,
            "postal_consent": rng.random() < 0.2,
            "marketing_consent": rng.random() < 0.5,
            "custom_mailchimp_subscriber_status": rng.choice(["subscribed", "unsubscribed", "pending", None]),
            "legacy_id": None,
            "description": None,
            "email_2": None,
            "phone_3": None,
            "contact_id": None,
            "group_id": None,
            "consent_token": None,
            "personal_data_cleared": None,
            "custom_works_for": None,
        }

    def _agents(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["agents"], index)
        agency = index < self.sizes.agencies
        contact = self.record("contacts", index, self.base_stamp("contacts", index))
        return {
            "id": self.id("agents", index),
            "ref": index + 1,
            "legacy_id": None,
            "agent_type": "agency" if agency else "individual_agent",
            "status": rng.choice(["with_agency_agreement", "without_agency_agreement"]),
            "agency": None if agency else self.id("agents", index % self.sizes.agencies),
            "sub_agent_of": None,
            "primary_contact": self.id("contacts", index),
            "owner": self.id("users", index % self.sizes.users),
            "commission_1": round(rng.uniform(1, 3), 2),
            "commission_2": round(rng.uniform(0, 1.5), 2) if rng.random() < 0.5 else None,
            "commission_3": None,
            "agreement_date": day(stamp.created - timedelta(days=rng.randint(0, 400))),
            "description": "Partner agency" if agency else None,
            "name": contact["name"],
            **self.audit(index, stamp, "agents"),
        }

    def _users(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["users"], index)
        contact_index = self.sizes.agents + index
        contact = self.record("contacts", contact_index, self.base_stamp("contacts", contact_index))
        first, last = contact["first_name"], contact["last_name"]
        return {
            "id": self.id("users", index),
            "username": f"{first.lower()}.{last.lower()}{index}",
            "contact_id": self.id("contacts", contact_index),
            "active": rng.random() < 0.9,
            "activation_date": timestamp(stamp.created),
            "company": "Example Realty Ltd",
            "department": rng.choice(catalog.DEPARTMENTS),
            "team": rng.choice(["Limassol", "Nicosia", "Paphos", "Larnaca", "International"]),
            "role": rng.choice(catalog.USER_ROLES),
            "employee_code": f"EMP{index + 1:04d}",
            "phone_extension": str(100 + index),
            "reports_to": None if index == 0 else self.id("users", 0),
            "is_supervisor": index == 0 or rng.random() < 0.1,
            "is_admin": index == 0,
            "legacy_id": None,
            "name": f"{first} {last}",
            "extra": {"first_name": first, "email": contact["email"], "phone_mobile": contact["phone"]},
            "two_fa_enabled": rng.random() < 0.3,
            **self.audit(index, stamp, "users"),
        }

    def _property_viewings(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["property-viewings"], index)
        edit = self.edit_rng("property-viewings", index, stamp.version)

        def assessment() -> int | None:
            return edit.choice([10, 20, 30, 40, None])

        return {
            "id": self.id("property-viewings", index),
            "property_id": self.id("properties", self.sizes.viewed_property(index)),
            "viewing_id": self.id("meetings", self.sizes.meeting_of_viewing(index)),
            "display_order": rng.randint(0, 3),
            "price_assessment": assessment(),
            "location_assessment": assessment(),
            "exterior_appeal_assessment": assessment(),
            "interior_appeal_assessment": assessment(),
            "views_assessment": assessment(),
            "viewing_outcome": assessment(),
            "further_feedback": edit.choice(
                [
                    None,
                    "Client liked the layout.",
                    "Too far from the centre.",
                    "Will make an offer.",
                    "Wants a second viewing.",
                ]
            ),
            **self.audit(index, stamp, "property-viewings"),
        }

    def _meetings(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["meetings"], index)
        edit = self.edit_rng("meetings", index, stamp.version)
        viewing_index = self.sizes.viewing_of_meeting(index)
        viewing = viewing_index is not None
        start = (stamp.created + timedelta(days=rng.randint(1, 21), hours=rng.randint(9, 18) - 9)).replace(
            minute=rng.choice([0, 15, 30, 45]), second=0
        )
        start += timedelta(days=edit.randint(0, 3)) if stamp.version else timedelta(0)
        property_index = self.sizes.viewed_property(viewing_index) if viewing else None
        agent = int(unit(self.keys["agents"], property_index) * self.sizes.agents) if viewing else None
        return {
            "id": self.id("meetings", index),
            "ref": index + 1,
            "legacy_id": None,
            "subject": "Property viewing"
            if viewing
            else rng.choice(["Valuation", "Client meeting", "Contract signing"]),
            "description": None,
            "start_date": timestamp(start),
            "end_date": timestamp(start + timedelta(minutes=rng.choice([30, 45, 60, 90]))),
            "location": None,
            "contact": self.id(
                "contacts", self.sizes.client_contact(int(unit(self.keys["meetings"], index) * self.sizes.clients))
            ),
            "assigned_to": self.id("users", int(unit(self.keys["users"], index + 7) * self.sizes.users)),
            "related_agent": self.id("agents", agent) if agent is not None else None,
            "related_opportunity": None,
            "viewing_type": rng.choice(["in_person", "in_person", "in_person", "virtual", "open_house"])
            if viewing
            else None,
            "canceled": edit.random() < 0.06,
            "custom_age_group": rng.choice(["20-35", "35-45", "45-65", "65+", None]),
            **self.audit(index, stamp, "meetings"),
        }

    def _opportunities(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["opportunities"], index)
        edit = self.edit_rng("opportunities", index, stamp.version)
        type_code = draw(rng, TYPE_TABLE)
        budget = money(rng.uniform(100_000, 2_000_000))
        buy_rent = rng.choice(["to_buy", "to_buy", "to_rent", "to_sell", "to_let"])
        return {
            "id": self.id("opportunities", index),
            "ref": index + 1,
            "legacy_id": None,
            "contact_name": self.id("contacts", self.sizes.client_contact(index)),
            "agent": self.id("agents", index % self.sizes.agents),
            "owner": self.id("users", index % self.sizes.users),
            "status": edit.choice(catalog.OPPORTUNITY_STATUSES),
            "buy_rent": buy_rent,
            "source": rng.choice(["direct", "agent", "external_site"]),
            "direct_source": rng.choice(["website", "walk_in", "social_media", "campaign", None]),
            "enquiry_date": day(stamp.created),
            "enquiry_type": type_code,
            "enquiry_subtypes": [rng.choice(catalog.PROPERTY_SUBTYPES[type_code])[0]],
            "bedrooms_from": rng.randint(1, 3) if type_code in RESIDENTIAL else None,
            "bedrooms_to": rng.randint(3, 5) if type_code in RESIDENTIAL else None,
            "bathrooms_from": None,
            "bathrooms_to": None,
            "list_selling_price_from": money(budget * 0.7) if buy_rent == "to_buy" else None,
            "list_selling_price_to": budget if buy_rent == "to_buy" else None,
            "list_rental_price_from": money(budget / 400) if buy_rent == "to_rent" else None,
            "list_rental_price_to": money(budget / 250) if buy_rent == "to_rent" else None,
            "furnished": rng.choice(["furnished", "unfurnished", None]),
            "description": rng.choice(
                ["Looking for a family home.", "Investment purchase.", "Relocating for work.", None]
            ),
            "next_follow_up_date": timestamp(stamp.modified + timedelta(days=rng.randint(1, 14))),
            "last_status_change": timestamp(stamp.modified),
            "post_codes": [],
            "lowest_selling_price": None,
            "lowest_letting_price": None,
            "list_selling_price": budget if buy_rent == "to_sell" else None,
            "list_letting_price": money(budget / 300) if buy_rent == "to_let" else None,
            "internal_area_from_amount": float(rng.choice([50, 80, 120])) if type_code in RESIDENTIAL else None,
            "internal_area_to_amount": float(rng.choice([150, 250, 400])) if type_code in RESIDENTIAL else None,
            "covered_area_from_amount": None,
            "covered_area_to_amount": None,
            "total_area_from_amount": None,
            "total_area_to_amount": None,
            "plot_area_from_amount": float(rng.choice([300, 600])) if type_code in ("house", "land") else None,
            "plot_area_to_amount": float(rng.choice([1000, 3000])) if type_code in ("house", "land") else None,
            "frontage_from_amount": None,
            "frontage_to_amount": None,
            "storage_from_amount": None,
            "storage_to_amount": None,
            "parking_from": rng.choice([None, 1, 2]),
            "parking_to": None,
            "covered_parking": None,
            "area_of_interest": None,
            "construction_stage": rng.choice(["offplans", "completed", "resale", None]),
            "town_planning_zone": "residential" if type_code == "land" else None,
            "business_transfer_commercial_activity": [],
            "business_transfer_or_sale": None,
            "air_condition": rng.random() < 0.5,
            "common_swimming_pool": rng.random() < 0.3,
            "private_swimming_pool": rng.random() < 0.2,
            "concierge_reception": None,
            "electricity": None,
            "elevator": rng.random() < 0.3 if type_code == "apartment" else None,
            "enclosed_office_room": None,
            "server_room": None,
            "new_build": rng.random() < 0.3,
            "pets_allowed": rng.random() < 0.3 if buy_rent == "to_rent" else None,
            "registered_road": None,
            "title_deeds": rng.random() < 0.6 if buy_rent == "to_buy" else None,
            "water": None,
            "campaign_id": None,
            "closed_lost_reason_id": None,
            "closed_lost_details": "Bought elsewhere" if edit.random() < 0.05 else None,
            "last_website_visit": timestamp(stamp.modified) if rng.random() < 0.4 else None,
            "notify_matching_properties": rng.random() < 0.5,
            "notify_properties_price_drop": rng.random() < 0.3,
            "sorting_expression": rng.choice(["price_low", "recently_listed", None]),
            "source_description": None,
            "website_url": None,
            "virtual_contact_name": None,
            "custom_interest_type": rng.choice(["Project", "Property", None]),
            "custom_general_interest_type": rng.choice(
                ["Investment", "Holiday Home", "Relocation", "First Home", None]
            ),
            "custom_attended_webinar": rng.random() < 0.1,
            "custom_do_not_contact": rng.random() < 0.03,
            "custom_enquiry_low_budget": rng.random() < 0.1,
            "custom_enquiry_stage_type": rng.choice(["Agent", "Referral", "Not Reached", None]),
            "custom_internal_area_amount": None,
            "custom_mql": rng.random() < 0.2,
            "custom_sql": rng.random() < 0.1,
            "custom_project": None,
            "custom_property": None,
            "custom_webinars": [],
            **self.audit(index, stamp, "opportunities"),
        }

    def _locations(self, index: int, stamp: Stamp) -> dict:
        country, district, area, subarea, lat, lon, _ = catalog.LOCATIONS[index]
        return {
            "id": self.id("locations", index),
            "ref": index + 1,
            "country": country,
            "district": district,
            "area": area,
            "subarea": subarea,
            "coordinates": f"{lat:.6f},{lon:.6f}",
            "display_priority": index % 10,
            "dist": True,
            **self.audit(index, stamp, "locations"),
        }

    def _property_types(self, index: int, stamp: Stamp) -> dict:
        code, name, base_type = catalog.PROPERTY_TYPES[index]
        return {
            "id": self.id("property-types", index),
            "code": code,
            "name": name,
            "base_type": base_type,
            "display_order": index + 1,
            "config": None,
            **self.audit(index, stamp, "property-types"),
        }

    def _property_subtypes(self, index: int, stamp: Stamp) -> dict:
        code, label, type_code = SUBTYPES[index]
        return {
            "id": self.id("property-subtypes", index),
            "code": code,
            "label": label,
            "property_type": type_code,
            **self.audit(index, stamp, "property-subtypes"),
        }

    def _project_features(self, index: int, stamp: Stamp) -> dict:
        field_name, code, label = PROJECT_FEATURE_ROWS[index]
        return {
            "id": self.id("project-features", index),
            "field": field_name,
            "code": code,
            "label": label,
            "dist": True,
            **self.audit(index, stamp, "project-features"),
        }

    def _property_features(self, index: int, stamp: Stamp) -> dict:
        field_name, code, label = PROPERTY_FEATURE_ROWS[index]
        return {
            "id": self.id("property-features", index),
            "field": field_name,
            "code": code,
            "label": label,
            "dist": True,
            "property_types": [
                code for code, _, base in catalog.PROPERTY_TYPES if base in ("residential", "commercial")
            ],
            "property_base_types": ["residential", "commercial"],
            **self.audit(index, stamp, "property-features"),
        }

    def _media_categories(self, index: int, stamp: Stamp) -> dict:
        name, label, related_model, mime_types = catalog.MEDIA_CATEGORIES[index]
        return {
            "id": self.id("media/categories", index),
            "name": name,
            "label": label,
            "related_model": related_model,
            "mime_types": mime_types,
            "media_types": ["upload"] if name != "photos" else ["upload", "youtube", "matterport"],
            "public": name != "id_documents",
            "signature_required": False,
            "watermark": name == "photos",
            "dist": True,
            **self.audit(index, stamp, "media/categories"),
        }

    def _bayut_locations(self, index: int, stamp: Stamp) -> dict:
        return {"id": self.id("bayut-locations", index), "location_hierarchy": catalog.BAYUT_HIERARCHIES[index]}

    def _portal_location(self, index: int, location: int) -> dict:
        _, district, _, subarea, *_ = catalog.LOCATIONS[location]
        slug = subarea.lower().replace(" ", "-").replace("'", "")
        return {
            "id": str(1000 + index),
            "name": slug,
            "label": f"{district}, {subarea}",
            "value": str(5000 + index),
            "qobrix_location_id": self.id("locations", location) if index % 4 else None,
        }

    def _bazaraki_locations(self, index: int, stamp: Stamp) -> dict:
        return self._portal_location(index, index)

    def _spitogatos_locations(self, index: int, stamp: Stamp) -> dict:
        greek = [i for i, row in enumerate(catalog.LOCATIONS) if row[0] in ("GR", "CY")]
        return self._portal_location(index, greek[index % len(greek)])

    def _property_finder_a_e_locations(self, index: int, stamp: Stamp) -> dict:
        return {"id": self.id("property-finder-a-e-locations", index), "name": catalog.PROPERTY_FINDER_AE_NAMES[index]}

    # --- media ------------------------------------------------------------------------------
    def category_index(self, name: str, related_model: str) -> int | None:
        return CATEGORY_INDEX.get((name, related_model))

    def media_counts(self, owner: str, index: int) -> dict[str, int]:
        bits = mix64(self.keys["media"] ^ text_key(owner) ^ index)
        if owner == "projects":
            return {"photos": 3 + bits % 6, "documents": bits >> 8 & 1, "floorplans": (bits >> 12) % 4}
        return {
            "photos": 4 + bits % 11,
            "documents": (0, 0, 1, 2)[bits >> 8 & 3],
            "floorplans": (0, 0, 1, 2)[bits >> 12 & 3],
        }

    def media_slots(self, owner: str, index: int, stamp: Stamp, category: str) -> list[tuple]:
        """(media id, file id, display order, upload time, is a PDF, file size) of each media item.

        Each media edit (`stamp.media_version`) replaces one photo, in turn, with a new one.
        """
        count = self.media_counts(owner, index)[category]
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

    def media(self, owner: str, index: int, stamp: Stamp, category: str) -> list[dict]:
        """The media of one category of a property or project, in display order (as MediaResponse)."""
        related_model = "Properties" if owner == "properties" else "Projects"
        category_record = self.lookup_record("media/categories", self.category_index(category, related_model))
        owner_id = self.id(owner, index)
        folder = f"{MEDIA_HOST}/files/{related_model.lower()}/{owner_id}"
        items = []
        for media_id, file_id, slot, uploaded, is_pdf, filesize in self.media_slots(owner, index, stamp, category):
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

    def media_json(self, owner: str, index: int, stamp: Stamp, category: str) -> bytes:
        """`media(...)` as JSON array members (no brackets), from a text template: the fast path."""
        related_model = "Properties" if owner == "properties" else "Projects"
        category_index = self.category_index(category, related_model)
        category_json = self.lookup_json("media/categories", category_index)
        category_id = self.lookup_record("media/categories", category_index)["id"]
        owner_id = self.id(owner, index)
        folder = f"{MEDIA_HOST}/files/{related_model.lower()}/{owner_id}"
        items = []
        for media_id, file_id, slot, uploaded, is_pdf, filesize in self.media_slots(owner, index, stamp, category):
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

    @lru_cache(maxsize=1024)
    def lookup_json(self, entity: str, index: int) -> str:
        return orjson.dumps(self.lookup_record(entity, index)).decode()

    @lru_cache(maxsize=4096)
    def lookup_record(self, entity: str, index: int) -> dict:
        """Lookup records never change: generate each once."""
        return self.record(entity, index, self.base_stamp(entity, index))
