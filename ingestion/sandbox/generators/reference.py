"""Reference data: the lookups other records point at (locations, property types and subtypes,
features, media categories) and the portals' location lists, all straight from the catalog."""

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import Stamp
from ingestion.sandbox.generators.context import EntityFamily
from ingestion.sandbox.generators.entities import PROJECT_FEATURE_ROWS, PROPERTY_FEATURE_ROWS, SUBTYPES


class ReferenceGenerator(EntityFamily):
    """Lookup records: one per catalog row, created before the history starts and never edited."""

    def location(self, index: int, stamp: Stamp) -> dict:
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

    def property_type(self, index: int, stamp: Stamp) -> dict:
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

    def property_subtype(self, index: int, stamp: Stamp) -> dict:
        code, label, type_code = SUBTYPES[index]
        return {
            "id": self.id("property-subtypes", index),
            "code": code,
            "label": label,
            "property_type": type_code,
            **self.audit(index, stamp, "property-subtypes"),
        }

    def project_feature(self, index: int, stamp: Stamp) -> dict:
        field_name, code, label = PROJECT_FEATURE_ROWS[index]
        return {
            "id": self.id("project-features", index),
            "field": field_name,
            "code": code,
            "label": label,
            "dist": True,
            **self.audit(index, stamp, "project-features"),
        }

    def property_feature(self, index: int, stamp: Stamp) -> dict:
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

    def media_category(self, index: int, stamp: Stamp) -> dict:
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

    def bayut_location(self, index: int, stamp: Stamp) -> dict:
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

    def bazaraki_location(self, index: int, stamp: Stamp) -> dict:
        return self._portal_location(index, index)

    def spitogatos_location(self, index: int, stamp: Stamp) -> dict:
        greek = [i for i, row in enumerate(catalog.LOCATIONS) if row[0] in ("GR", "CY")]
        return self._portal_location(index, greek[index % len(greek)])

    def property_finder_location(self, index: int, stamp: Stamp) -> dict:
        return {"id": self.id("property-finder-a-e-locations", index), "name": catalog.PROPERTY_FINDER_AE_NAMES[index]}
