"""Which Microsoft 365 tenant a domain belongs to, from Entra's OpenID discovery document.

``{authority}/{domain}/v2.0/.well-known/openid-configuration`` is public (no token): its
``issuer`` (``https://login.microsoftonline.com/{tenant-id}/v2.0``) and ``token_endpoint``
carry the tenant id, a GUID.

Failure policy: a domain Entra does not know raises ``UnknownDomain`` (a ``NeedsAttention``);
an authority that cannot be reached raises ``GraphUnavailable`` after the transport's retries.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from common.errors import NeedsAttention
from common.http import Transport

_GUID_IN_URL = re.compile(
    r"/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:/|$)"
)


class UnknownDomain(NeedsAttention):
    """Entra knows no tenant with this domain."""

    hint = "Check the spelling, or give the tenant id (a GUID) instead."


def parse_guid(text: str) -> str | None:
    """The GUID in ``text`` in its canonical lower-case form, or ``None`` when it is none."""
    try:
        value = uuid.UUID(text.strip())
    except ValueError:
        return None
    # uuid.UUID also takes "{...}", "urn:uuid:..." and 32 bare hex digits; a tenant id is only
    # ever written with its hyphens
    return str(value) if len(text.strip()) == 36 else None


def tenant_id_for_domain(transport: Transport, authority: str, domain: str) -> str:
    """The tenant id (a GUID) of the Microsoft 365 tenant that owns ``domain``."""
    domain_path = quote(domain.strip(), safe="")
    url = f"{authority.rstrip('/')}/{domain_path}/v2.0/.well-known/openid-configuration"
    response = transport.request("GET", url)
    try:
        if response.status_code == 200:
            document = response.json()
            for field in ("issuer", "token_endpoint"):
                match = _GUID_IN_URL.search(str(document.get(field, "")))
                if match:
                    return match.group(1).lower()
    except ValueError:
        pass
    finally:
        response.close()
    raise UnknownDomain(
        f"No Microsoft 365 tenant owns the domain {domain.strip()!r} "
        f"(its sign-in discovery document answered {response.status_code})."
    )
