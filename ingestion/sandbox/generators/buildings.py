"""Buildings: what describes a property's building (rooms, areas, features, energy, distances), pooled.

Pooling what describes the building keeps generation fast; every property still has its
own location, price, status, people, dates and ids (see `listings`).
"""

import random
from functools import lru_cache

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import (
    BLOCK_VARIANTS,
    COMMERCIAL,
    PROPERTY_TYPE_CODES,
    RESIDENTIAL,
    Block,
    draw,
    money,
    weighted,
)
from ingestion.sandbox.identity import rng_for, text_key

BEDROOMS_TABLE = weighted(list(range(1, 7)), [15, 30, 28, 15, 8, 4])
FEATURE_COUNT_TABLE = weighted([0, 1, 2, 3], [35, 30, 25, 10])


class Buildings:
    """BLOCK_VARIANTS buildings per property type, drawn from the properties' key."""

    def __init__(self, key: int) -> None:
        self.key = key

    @lru_cache(maxsize=len(PROPERTY_TYPE_CODES) * BLOCK_VARIANTS)
    def block(self, type_code: str, variant: int) -> Block:
        """One of BLOCK_VARIANTS buildings of a type: rooms, areas, features, energy, distances."""
        rng = rng_for(self.key ^ text_key(type_code), variant)
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

    def _features(self, rng: random.Random) -> dict[str, list[str]]:
        """Feature arrays (PropertyFeatures codes); about one in twenty codes is not a standard one."""
        chosen = {}
        for field_name, rows in catalog.PROPERTY_FEATURES.items():
            count = draw(rng, FEATURE_COUNT_TABLE)
            chosen[field_name] = sorted({code for code, _ in rng.sample(rows, min(count, len(rows)))})
        return chosen

    def _subtype_fields(self, type_code: str, subtype_label: str) -> dict:
        names = ("apartment", "house", "land", "office", "retail", "industrial", "hotel", "building", "investment")
        return {f"{name}_type": subtype_label if name == type_code else None for name in names}

    def _description(self, rng: random.Random, subtype_label: str, bedrooms: int | None, pick: dict) -> str:
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
