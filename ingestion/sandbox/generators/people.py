"""People: contacts, and the agents and users whose details come from their own contact records.

Contacts come in blocks (agents' primary contacts, users' contacts, developers, clients;
see `Sizes.contacts`), so an agent's or user's name is its contact's.
"""

from datetime import timedelta
from functools import lru_cache

from ingestion.sandbox import catalog
from ingestion.sandbox.generators.common import BLOCK_VARIANTS, EDIT_SALT, Stamp, day, timestamp
from ingestion.sandbox.generators.context import EntityFamily
from ingestion.sandbox.identity import mix64, rng_for, unit

PHONE_PREFIXES = {"CY": "+357", "GR": "+30", "MT": "+356", "PT": "+351", "ES": "+34", "AE": "+971"}
CONTACT_ROLES = {"agency": "Agency", "agent": "Agent", "user": "Staff", "developer": "Developer"}


class PeopleGenerator(EntityFamily):
    """Contacts, agents and users."""

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

    def contact(self, index: int, stamp: Stamp) -> dict:
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

    def agent(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["agents"], index)
        agency = index < self.sizes.agencies
        contact = self.contact(index, self.base_stamp("contacts", index))
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

    def user(self, index: int, stamp: Stamp) -> dict:
        rng = rng_for(self.keys["users"], index)
        contact_index = self.sizes.agents + index
        contact = self.contact(contact_index, self.base_stamp("contacts", contact_index))
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
