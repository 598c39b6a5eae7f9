"""Properties: each listing's own fields drawn per record, spliced with a pooled listing and building.

A property is (fields drawn for this record, a pooled listing block, a pooled building
block): the pools keep generation fast, the drawn part keeps every record distinct.
"""

from datetime import timedelta
from functools import lru_cache

import orjson

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.buildings import Buildings
from ingestion.sandbox.generators.common import (
    BLOCK_VARIANTS,
    RESIDENTIAL,
    TYPE_TABLE,
    Block,
    Stamp,
    draw,
    money,
    timestamp,
    weighted,
)
from ingestion.sandbox.generators.context import EntityFamily, RecordContext
from ingestion.sandbox.generators.projects import ProjectGenerator
from ingestion.sandbox.identity import mix64, rng_for, text_key, unit

SALE_RENT = ["for_sale", "for_rent", "for_sale_and_rent", "for_management", "for_auction"]
SALE_RENT_WEIGHTS = [60, 25, 8, 4, 3]
STATUSES = ["available", "reserved", "under_offer", "sold", "rented", "withdrawn", "pending"]
STATUS_WEIGHTS = [55, 8, 7, 10, 8, 6, 6]
RENT_FREQUENCIES = ["Monthly", "Monthly", "Monthly", "Yearly", "Weekly", "Quarterly", "Daily", "Monthly"]
ADJECTIVES = catalog.PROPERTY_ADJECTIVES[:8]
SALE_RENT_TABLE = weighted(SALE_RENT, SALE_RENT_WEIGHTS)
STATUS_TABLE = weighted(STATUSES, STATUS_WEIGHTS)
LETTING = ("for_rent", "for_sale_and_rent", "for_management")
PROPERTY_CONSTANTS = Block.of(
    {"original_name": None, "original_website_url": None, "campaign_id": None, "group_id": None, "cloned_from": None,
     "source_description": None, "custom_bazaraki_chosen_phone": None}
)  # fmt: skip


class ListingGenerator(EntityFamily):
    """Properties, placed in a project's location when they belong to one."""

    def __init__(self, context: RecordContext, projects: ProjectGenerator) -> None:
        super().__init__(context)
        self.projects = projects
        self.buildings = Buildings(self.keys["properties"])

    def record(self, index: int, stamp: Stamp) -> dict:
        head, listing, building = self.parts(index, stamp)
        return {**head, **listing.fields, **building.fields, **PROPERTY_CONSTANTS.fields}

    def render(self, index: int, stamp: Stamp) -> tuple[bytes, dict]:
        """The property as JSON object members (no braces), spliced from cached blocks, and its head."""
        head, listing, building = self.parts(index, stamp)
        members = b",".join((orjson.dumps(head)[1:-1], listing.json, building.json, PROPERTY_CONSTANTS.json))
        return members, head

    def parts(self, index: int, stamp: Stamp) -> tuple[dict, Block, Block]:
        """A property as (fields drawn for this record, pooled listing block, pooled building block)."""
        sizes, key = self.sizes, self.keys["properties"]
        rng = rng_for(key, index)
        edit = self.edit_rng("properties", index, stamp.version)
        type_code = draw(rng, TYPE_TABLE)
        building = self.buildings.block(type_code, rng.randrange(BLOCK_VARIANTS))
        residential, land = type_code in RESIDENTIAL, type_code == "land"
        project = (
            int(unit(self.keys["projects"], index) * sizes.projects) if residential and rng.random() < 0.3 else None
        )
        location = self.projects.location(project) if project is not None else rng.randrange(len(catalog.LOCATIONS))
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
    def listing_block(self, variant: int, sale_rent: str, cyprus: bool) -> Block:
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
