"""``skolsynk sandbox graph tenant add``: a new school tenant in a running sandbox, through its
admin API, and the environment Skolsynk needs to reach it written to an env file.

The env file gets ``SKOLSYNK_AUTHORITY``, ``SKOLSYNK_GRAPH_URL``, ``SKOLSYNK_CA_BUNDLE``,
``SKOLSYNK_CLIENT_ID``, ``SKOLSYNK_CLIENT_SECRET``, a ``SKOLSYNK_SECRET_KEY`` (made once, then
kept) and ``TENANT_ID``; ``. FILE`` puts them in a shell.

Failure policy: a sandbox that is not up within ``--wait`` seconds, or that refuses the tenant,
ends the command with a sentence on stderr and exit code 1; the secret is never printed.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from typing import Any

import requests

from sandbox.envfile import (
    SandboxNotReady,
    add_env_options,
    env_file_values,
    update_env_file,
    when_answering,
)

INFO_FILE = "sandbox.json"
EXIT_FAILED = 1


def register_tenant_commands(parser: argparse.ArgumentParser, default_data_dir: str) -> None:
    """Add ``tenant add`` under ``skolsynk sandbox graph``."""
    kinds = parser.add_subparsers(dest="graph_command", metavar="COMMAND", required=False)
    tenant = kinds.add_parser("tenant", help="school tenants of a running sandbox")
    actions = tenant.add_subparsers(dest="graph_tenant_action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="create a school tenant in the running sandbox",
        description="Create a school tenant in the sandbox running with DIR (waiting for it to "
        "start) and write what Skolsynk needs to reach it to an env file.",
    )
    add.add_argument(
        "--data-dir",
        type=Path,
        default=Path(default_data_dir),
        metavar="DIR",
        help=f"the running sandbox's data directory ({default_data_dir})",
    )
    add.add_argument("--name", help="the tenant's name (default: a generated one)")
    add.add_argument("--generate", type=int, metavar="N", help="a municipality of about N users")
    add.add_argument(
        "--load", action="append", default=[], metavar="FORMAT:PATH", help="an SDS CSV folder"
    )
    add.add_argument("--seed", type=int, help="seed of generated data")
    add_env_options(add, writes="the environment for Skolsynk", waits_for="the sandbox")
    add.set_defaults(handler=add_tenant)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    from sandbox.graph.registry import Load

    body: dict[str, Any] = {}
    if args.name:
        body["name"] = args.name
    if args.generate is not None:
        body["generate"] = args.generate
    if args.seed is not None:
        body["seed"] = args.seed
    if args.load:
        loads = [Load.parse(text) for text in args.load]
        body["load"] = [
            {"format": load.format, "path": str(Path(load.path).resolve())} for load in loads
        ]
    return body


def add_tenant(args: argparse.Namespace) -> int:
    try:
        body = _body(args)
    except ValueError as exc:
        print(f"skolsynk sandbox graph tenant add: {exc}", file=sys.stderr)
        return EXIT_FAILED

    def create(info: dict[str, Any]) -> tuple[dict[str, Any], requests.Response]:
        response = requests.post(
            f"{info['admin_url']}/tenants",
            json=body,
            headers={"Authorization": f"Bearer {info['admin_token']}"},
            verify=info["ca_bundle"],
            timeout=600,
        )
        return info, response

    try:
        info, response = when_answering(
            args.data_dir / INFO_FILE, create, timeout=args.wait, what="The sandbox tenant"
        )
    except SandboxNotReady as exc:
        print(f"skolsynk sandbox graph tenant add: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if response.status_code != 201:
        print(
            f"skolsynk sandbox graph tenant add: the sandbox refused the tenant "
            f"({response.status_code}): {_error(response)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    tenant = response.json()
    known = env_file_values(args.env_file)
    path = update_env_file(
        args.env_file,
        {
            "SKOLSYNK_AUTHORITY": info["authority"],
            "SKOLSYNK_GRAPH_URL": info["graph_url"],
            "SKOLSYNK_CA_BUNDLE": str(Path(info["ca_bundle"]).resolve()),
            "SKOLSYNK_CLIENT_ID": info["client_id"],
            "SKOLSYNK_CLIENT_SECRET": info["client_secret"],
            "SKOLSYNK_SECRET_KEY": known.get("SKOLSYNK_SECRET_KEY") or secrets.token_urlsafe(32),
            "TENANT_ID": tenant["id"],
        },
    )
    print(f"Created tenant {tenant['name']}: id {tenant['id']}, domain {tenant['domain']}.")
    print(f"The environment for Skolsynk is in {path} (`. {path}`; TENANT_ID is this tenant).")
    return 0


def _error(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or data)[:200]
