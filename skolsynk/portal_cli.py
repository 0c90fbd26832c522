"""``skolsynk portal check URL --token TOKEN``: what a SCIM server supports, the mapping used.

Reads only; never writes to the server. Exit 0 when the server can serve as a portal, non-zero
with one sentence when the URL, the token or the server is unusable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from common.config import Secret
from common.errors import NeedsAttention, PortalUnavailable
from common.http import RetryPolicy, Transport, build_session
from common.portal.check import PortalCheck, check_portal, render
from common.portal.client import ScimPortal
from common.portal.mapping import parse_overrides
from skolsynk.output import to_json

#: a check answers quickly: a server that is down is said so after one more try
CHECK_RETRIES = RetryPolicy(attempts=2, base_delay_seconds=0.2, max_delay_seconds=0.5)
CHECK_TIMEOUT_SECONDS = (5.0, 15.0)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("portal", help="look at a portal's SCIM server")
    commands = parser.add_subparsers(dest="portal_command", metavar="ACTION", required=True)
    check = commands.add_parser(
        "check", help="what a SCIM server supports and the mapping Skolsynk would use there"
    )
    check.add_argument("url", metavar="URL", help="the SCIM base URL (…/scim/v2)")
    check.add_argument("--token", required=True, help="the bearer token for that URL")
    check.add_argument(
        "--mapping", default="", help="attribute mapping, e.g. 'grade=off,role=userType'"
    )
    check.add_argument("--ca-bundle", type=Path, help="CA bundle for a portal with a private CA")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.set_defaults(handler=_check)


def run_check(
    url: str, token: Secret | str, *, mapping: str = "", ca_bundle: Path | None = None
) -> PortalCheck:
    """Check one portal connection (``tenant add``/``set`` call this too)."""
    try:
        overrides = parse_overrides(mapping)
    except ValueError as exc:
        raise NeedsAttention(f"The mapping {mapping!r} cannot be used: {exc}.") from None
    session = build_session(ca_bundle=ca_bundle, timeout=CHECK_TIMEOUT_SECONDS)
    transport = Transport(
        session, service=f"the portal at {url}", unavailable=PortalUnavailable, policy=CHECK_RETRIES
    )
    try:
        return check_portal(ScimPortal(transport, url, token, overrides=overrides))
    finally:
        session.close()


def _check(args: argparse.Namespace) -> int:
    check = run_check(args.url, args.token, mapping=args.mapping, ca_bundle=args.ca_bundle)
    print(to_json(check.to_dict()) if args.format == "json" else render(check))
    return 0
