"""Activity: property viewings, the meetings they happen in, and opportunities (what clients ask for)."""

from datetime import timedelta

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import RESIDENTIAL, TYPE_TABLE, Stamp, day, draw, money, timestamp
from ingestion.sandbox.generators.context import EntityFamily
from ingestion.sandbox.identity import rng_for, unit


class ActivityGenerator(EntityFamily):
    """Viewings, meetings and opportunities; each viewing has its own meeting (see `Sizes.meeting_of_viewing`)."""

    def viewing(self, index: int, stamp: Stamp) -> dict:
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

    def meeting(self, index: int, stamp: Stamp) -> dict:
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

    def opportunity(self, index: int, stamp: Stamp) -> dict:
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
