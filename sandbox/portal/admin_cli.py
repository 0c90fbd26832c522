"""``skolsynk sandbox portal org add NAME``: a school organisation in the running reference
portal, through its admin API, with its SCIM base URL and token written to an env file.

The env file gets ``PORTAL_URL`` (the organisation's SCIM base URL) and ``PORTAL_TOKEN``; an
organisation that exists already is reused, so the command can be run again.

Failure policy: a portal that is not up within ``--wait`` seconds, or that refuses the name,
ends the command with a sentence on stderr and exit code 1; the token is never printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import requests

from sandbox.envfile import (
    SandboxNotReady,
    add_env_options,
    update_env_file,
    when_answering,
)

EXIT_FAILED = 1


def register_org_commands(
    parser: argparse.ArgumentParser, default_db: Path, info_file: str
) -> None:
    """Add ``org add`` under ``skolsynk sandbox portal``."""
    kinds = parser.add_subparsers(dest="portal_command", metavar="COMMAND", required=False)
    org = kinds.add_parser("org", help="school organisations of a running portal")
    actions = org.add_subparsers(dest="portal_org_action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="create a school organisation in the running portal",
        description="Create (or reuse) an organisation in the portal running with DB, waiting "
        "for it to start, and write its SCIM base URL and token to an env file.",
    )
    add.add_argument("name", metavar="NAME", help="the organisation (its SCIM URL ends in it)")
    add.add_argument(
        "--db", type=Path, default=default_db, help=f"the portal's database ({default_db})"
    )
    add_env_options(add, writes="PORTAL_URL and PORTAL_TOKEN", waits_for="the portal")
    add.set_defaults(handler=add_org, portal_info_file=info_file)


def add_org(args: argparse.Namespace) -> int:
    def create(info: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {info['admin_token']}"}
        url = f"{info['url']}/api/organisations"
        response = requests.post(url, json={"name": args.name}, headers=headers, timeout=30)
        if response.status_code == 409:  # there already: use it
            listed = requests.get(url, headers=headers, timeout=30).json()["organisations"]
            return 200, next(o for o in listed if o["name"] == args.name)
        return response.status_code, response.json()

    info_path = Path(args.db).parent / args.portal_info_file
    try:
        status, org = when_answering(info_path, create, timeout=args.wait, what="The portal")
    except SandboxNotReady as exc:
        print(f"skolsynk sandbox portal org add: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if status not in (200, 201):
        print(
            f"skolsynk sandbox portal org add: the portal refused {args.name!r} "
            f"({status}): {org.get('error', '')}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    path = update_env_file(
        args.env_file, {"PORTAL_URL": org["scim_url"], "PORTAL_TOKEN": org["token"]}
    )
    verb = "Created" if status == 201 else "Reusing"
    print(f"{verb} organisation {org['name']}: SCIM base URL {org['scim_url']}.")
    print(f"PORTAL_URL and PORTAL_TOKEN are in {path} (`. {path}`).")
    return 0
