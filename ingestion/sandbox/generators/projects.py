"""Projects: developments with their developer, location and amenities (properties may belong to one)."""

from datetime import timedelta

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import Stamp, day, money, timestamp
from ingestion.sandbox.generators.context import EntityFamily
from ingestion.sandbox.identity import rng_for


class ProjectGenerator(EntityFamily):
    """Projects; a project's location is shared with the properties in it."""

    def location(self, project: int) -> int:
        """The `catalog.LOCATIONS` index of a project (its properties are placed there too)."""
        return rng_for(self.keys["projects"], project).randrange(len(catalog.LOCATIONS))

    def record(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["projects"], index)
        location = self.location(index)
        country, district, area, subarea, lat, lon, post_code = catalog.LOCATIONS[location]
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
