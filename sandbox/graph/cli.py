"""``skolsynk sandbox graph``: run the simulated Microsoft 365 school tenant(s).

Builds the tenants (SDS loads, then a generated municipality), starts HTTPS, writes
``DIR/sandbox.json`` (the contract clients read: URLs, CA bundle, app credentials, tenants) and
serves until SIGINT or SIGTERM, when it stops cleanly and removes ``sandbox.json``.

Each SDS load prints its import report (counts created, rows rejected with file, line and
reason, warnings). Failure policy: a bad ``--load``, an unreadable CSV folder, or with
``--strict`` a rejected row, ends the command with a sentence on stderr and exit code 2; the
secret and the admin token are never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "./var/sandbox-graph"
INFO_FILE = "sandbox.json"
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``graph`` to ``skolsynk sandbox``."""
    from sandbox.graph.registry import (
        DEFAULT_DELTA_TOKEN_MAX_AGE_SECONDS,
        DEFAULT_TOKEN_LIFETIME_SECONDS,
    )

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "graph",
        help="run a simulated Microsoft 365 school tenant (Microsoft Graph and Entra sign-in)",
        description=(
            "Serve Microsoft Graph v1.0 and Entra client-credentials sign-in over HTTPS for one "
            "or more simulated school tenants fed by School Data Sync. Writes DIR/sandbox.json "
            "with everything a client needs."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0 picks a free one)")
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        type=Path,
        help="where the CA, keys and sandbox.json live",
    )
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="FORMAT:PATH",
        help="load an SDS CSV folder into each tenant; FORMAT is sds-classic, sds-uk, "
        "sds-v2 or sds-v2.1 (repeatable); an import report is printed for each",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse to start when an SDS CSV row is rejected (by default such rows are "
        "reported and left out, as SDS does)",
    )
    parser.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="add a generated Swedish municipality of about N users",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of generated data (default 1)")
    parser.add_argument(
        "--tenants",
        type=int,
        default=1,
        metavar="K",
        help="number of tenants, each loaded/generated alike (default 1)",
    )
    parser.add_argument(
        "--delta-token-max-age",
        type=float,
        default=DEFAULT_DELTA_TOKEN_MAX_AGE_SECONDS,
        metavar="SECONDS",
        help="age after which delta tokens answer syncStateNotFound (7 days)",
    )
    parser.add_argument(
        "--token-lifetime",
        type=int,
        default=DEFAULT_TOKEN_LIFETIME_SECONDS,
        metavar="SECONDS",
        help="lifetime of access tokens (default 3600)",
    )
    parser.add_argument(
        "--notification-retry",
        type=float,
        default=4 * 3600.0,
        metavar="SECONDS",
        help="how long failed notifications are retried (default 4 hours)",
    )
    parser.add_argument(
        "--notification-ca-bundle",
        metavar="PEM",
        help="CA bundle to trust for https notification URLs",
    )
    parser.add_argument(
        "--no-consent",
        action="store_true",
        help="start every tenant without admin consent for Skolsynk's app (an administrator "
        "consents at /{tenant}/adminconsent)",
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URI",
        help="register a redirect URI for both apps (loopback http URIs need none; repeatable)",
    )
    parser.set_defaults(handler=run)
    _register_admin_commands(parser)


def _register_admin_commands(parser: argparse.ArgumentParser) -> None:
    """``skolsynk sandbox graph tenant add``: the running sandbox's admin API (admin_cli)."""
    from sandbox.graph.admin_cli import register_tenant_commands

    register_tenant_commands(parser, DEFAULT_DATA_DIR)


def _public_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # noqa: S104 (mapping a wildcard bind to a reachable name)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _write_info(path: Path, info: dict[str, Any]) -> None:
    temporary = path.with_suffix(".json.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle, indent=2)
    temporary.replace(path)


def _describe(tenant: Any) -> str:
    c = tenant.counts()
    return (
        f"Tenant {tenant.name}: id {tenant.id}, domain {tenant.domain}: {c['users']} users "
        f"({c['students']} students, {c['teachers']} teachers, {c['guests']} guests), "
        f"{c['groups']} groups ({c['classes']} classes), {c['schools']} schools"
    )


def run(args: argparse.Namespace) -> int:
    from sandbox.graph.app import SandboxApp
    from sandbox.graph.ca import ensure_trust
    from sandbox.graph.identity import Identity
    from sandbox.graph.registry import Load, Registry, Settings
    from sandbox.graph.server import TLSServer, tls_context

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        loads = tuple(Load.parse(text) for text in args.load)
    except ValueError as exc:
        print(f"skolsynk sandbox graph: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.tenants < 1 or (args.generate is not None and args.generate < 1):
        print(
            "skolsynk sandbox graph: --tenants and --generate must be at least 1", file=sys.stderr
        )
        return EXIT_USAGE
    data_dir: Path = args.data_dir.resolve()
    info_path = data_dir / INFO_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    info_path.unlink(missing_ok=True)
    trust = ensure_trust(data_dir, args.host)
    try:
        identity = Identity.load(
            data_dir,
            trust.app,
            consent_by_default=not args.no_consent,
            redirect_uris=tuple(args.redirect_uri),
        )
    except ValueError as exc:
        print(f"skolsynk sandbox graph: --redirect-uri: {exc}", file=sys.stderr)
        return EXIT_USAGE
    server = TLSServer(
        args.host, args.port, None, tls_context(trust.server_cert_path, trust.server_key_path)
    )
    authority = f"https://{_public_host(args.host)}:{server.port}"
    settings = Settings(
        authority=authority,
        graph_url=f"{authority}/v1.0",
        token_lifetime_seconds=args.token_lifetime,
        delta_token_max_age_seconds=args.delta_token_max_age,
    )
    registry = Registry(
        trust,
        settings,
        notification_retry_seconds=args.notification_retry,
        notification_verify=args.notification_ca_bundle or True,
        identity=identity,
    )
    try:
        for index in range(args.tenants):
            tenant_id = str(
                uuid.UUID(
                    int=random.Random(f"tenant:{args.seed}:{index}").getrandbits(128), version=4
                )
            )
            tenant = registry.create_tenant(
                loads=loads,
                generate=args.generate,
                seed=args.seed + index,
                tenant_id=tenant_id,
                strict=args.strict,
            )
            print(_describe(tenant), flush=True)
            for report in registry.import_reports[tenant.id]:
                print("\n".join(report.lines()), flush=True)
    except (ValueError, OSError) as exc:
        server.server_close()
        print(f"skolsynk sandbox graph: {exc}", file=sys.stderr)
        return EXIT_USAGE
    server.app = SandboxApp(registry)
    thread = threading.Thread(target=server.serve_forever, name="https", daemon=True)
    thread.start()
    _write_info(
        info_path,
        {
            "authority": authority,
            "graph_url": settings.graph_url,
            "ca_bundle": str(trust.ca_path),
            "client_id": trust.app.client_id,
            "client_secret": trust.app.client_secret,
            "admin_url": f"{authority}/_sandbox",
            "admin_token": trust.app.admin_token,
            "people_password": identity.people_password,
            "apps": [app.public() for app in identity.apps.values()],
            "tenants": [
                {
                    "id": t.id,
                    "domain": t.domain,
                    "name": t.name,
                    "administrator": identity.administrators.get(t.id),
                }
                for t in registry.tenants.values()
            ],
        },
    )
    print(
        f"Sign-in authority {authority}/<tenant id>, Graph {settings.graph_url}, "
        f"admin {authority}/_sandbox",
        flush=True,
    )
    print(f"Client settings (CA bundle, client id and secret) are in {info_path}", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    server.server_close()
    registry.notifier.stop()
    info_path.unlink(missing_ok=True)
    print("Sandbox stopped.", flush=True)
    return 0
