"""SCIM 2.0 names (RFC 7643/7644) and the school extension that portals of Skolsynk accept."""

from __future__ import annotations

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: role (``student``/``teacher``), schools (SDS school ids, multi-valued), schoolNames (what
#: SDS calls those schools; optional), grade
SCHOOL_USER_SCHEMA = "urn:skolsynk:params:scim:schemas:extension:school:1.0:User"
#: school (the SDS school id of a class), schoolName (what SDS calls it; optional)
SCHOOL_GROUP_SCHEMA = "urn:skolsynk:params:scim:schemas:extension:school:1.0:Group"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_MEDIA_TYPE = "application/scim+json"
