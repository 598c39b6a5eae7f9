"""Regenerate the contract fixtures from the reference material in ../shared/reference.

    python tests/contracts/extract.py [REFERENCE_DIR]

`qobrix_schemas.json`: the OpenAPI component schemas of every Qobrix entity the product
reads (from the 2025-11 spec), so contract tests run where the reference folder is absent.
"""

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
DEFAULT_REFERENCE = HERE.parents[2] / "shared" / "reference"
QOBRIX_SCHEMAS = HERE / "qobrix_schemas.json"

ENTITY_SCHEMAS = {
    "properties": "Property", "agents": "Agent", "users": "User", "contacts": "Contact",
    "property-viewings": "PropertyViewing", "meetings": "Meeting", "opportunities": "Opportunity",
    "projects": "Project", "project-features": "ProjectFeature", "property-features": "PropertyFeature",
    "locations": "Location", "property-types": "PropertyType", "property-subtypes": "PropertySubtype",
    "media/categories": "MediaCategory", "bayut-locations": "BayutLocation", "bazaraki-locations": "BazarakiLocation",
    "spitogatos-locations": "SpitogatosLocation", "property-finder-a-e-locations": "PropertyFinderAELocation",
}  # fmt: skip
EXTRA_SCHEMAS = ("MediaResponse", "MediaFile", "pagination", "ErrorResponse")


def qobrix_schemas(reference: Path) -> dict:
    spec = yaml.load((reference / "qobrix" / "qobrix_openapi_2025-11.yaml").read_text(), Loader=yaml.CSafeLoader)
    components = spec["components"]["schemas"]
    names = sorted({*ENTITY_SCHEMAS.values(), *EXTRA_SCHEMAS})
    return {
        "source": "qobrix_openapi_2025-11.yaml components/schemas",
        "entities": ENTITY_SCHEMAS,
        "schemas": {name: components[name] for name in names},
    }


def main() -> None:
    reference = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_REFERENCE
    QOBRIX_SCHEMAS.write_text(json.dumps(qobrix_schemas(reference), indent=1, sort_keys=True) + "\n")
    print(f"wrote {QOBRIX_SCHEMAS}")


if __name__ == "__main__":
    main()
