"""``skolsynk sandbox portal``: run the reference portal.

At start it makes sure the organisations named with ``--org`` exist (one called ``skola`` when
the database has none), writes ``portal.json`` beside the database with the base URLs and
tokens (readable by the owner only) and prints the URLs and where that file is. Tokens are
printed only with ``--show-tokens``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_DB = Path("var/portal/portal.sqlite3")
DEFAULT_ORGANISATION = "skola"
INFO_FILE = "portal.json"


def register(subparsers: Any) -> None:
    """Add ``portal`` to ``skolsynk sandbox``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "portal",
        help="run the reference learning-material portal (SCIM 2.0)",
        description=(
            "The reference portal: SCIM 2.0 per school organisation at /scim/v2/ORG, the "
            "portal's own API under /api/, HTML pages at /, knobs and counters under /_sandbox/."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (0)")
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite database file ({DEFAULT_DB})"
    )
    parser.add_argument(
        "--org",
        action="append",
        default=[],
        metavar="NAME",
        help="an organisation to ensure at start (repeatable)",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN",
        help="bearer token of the n-th --org (repeatable; otherwise random and kept)",
    )
    parser.add_argument(
        "--show-tokens", action="store_true", help="also print the tokens (they are in portal.json)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    parser.add_argument(
        "--microsoft",
        type=Path,
        metavar="SANDBOX_JSON",
        help="switch on sign-in with Microsoft with the 'portal' app of this sandbox.json "
        "(skolsynk sandbox graph writes it)",
    )
    parser.set_defaults(handler=run)
    _register_admin_commands(parser)


def _register_admin_commands(parser: argparse.ArgumentParser) -> None:
    """``skolsynk sandbox portal org add``: the running portal's admin API (admin_cli)."""
    from sandbox.portal.admin_cli import register_org_commands

    register_org_commands(parser, DEFAULT_DB, INFO_FILE)


def run(args: argparse.Namespace) -> int:
    from werkzeug.serving import WSGIRequestHandler, make_server

    from common.errors import ConfigError
    from sandbox.portal.app import close_app, create_app
    from sandbox.portal.context import Portal
    from sandbox.portal.microsoft import MicrosoftSettings

    if len(args.token) > len(args.org):
        raise ConfigError([f"{len(args.token)} --token given for {len(args.org)} --org"])
    microsoft = None
    if args.microsoft is not None:
        try:
            microsoft = MicrosoftSettings.from_sandbox_json(args.microsoft)
        except ValueError as exc:
            raise ConfigError([f"--microsoft: {exc}"]) from exc
    app = create_app(args.db, microsoft=microsoft)
    portal: Portal = app.extensions["portal"]
    try:
        try:
            for index, name in enumerate(args.org):
                token = args.token[index] if index < len(args.token) else None
                portal.db.ensure_organisation(name, token)
            if not portal.db.organisations():
                portal.db.ensure_organisation(DEFAULT_ORGANISATION)
        except ValueError as exc:
            raise ConfigError([str(exc)]) from exc

        class Handler(WSGIRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections

            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                if args.access_log:
                    super().log_request(code, size)

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = make_server(args.host, args.port, app, threaded=True, request_handler=Handler)
        url = f"http://{_url_host(args.host)}:{server.server_port}"
        info_path = write_info(args.db, url, portal)
        print(f"Reference portal at {url}/  (pages on this machine only)")
        if microsoft is not None:
            print(f"  sign in with Microsoft: {url}/login  or  {url}/?idp=microsoft")
        for org in portal.db.organisations():
            line = f"  {org.name}: {url}/scim/v2/{org.name}"
            print(line + (f"  token {org.token}" if args.show_tokens else ""))
        if args.show_tokens:
            print(f"  admin token {portal.admin_token}")
        print(f"Base URLs and tokens: {info_path}", flush=True)

        def stop(signum: int, frame: object) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.serve_forever()
        server.server_close()
        print("Portal stopped.", flush=True)
    finally:
        close_app(app)
    return 0


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def write_info(db_path: Path, url: str, portal: Any) -> Path:
    """Write ``portal.json`` beside the database (owner-only; it holds tokens)."""
    info = {
        "url": url,
        "admin_token": portal.admin_token,
        "organisations": [
            {"name": o.name, "scim_url": f"{url}/scim/v2/{o.name}", "token": o.token}
            for o in portal.db.organisations()
        ],
    }
    path = Path(db_path).parent / INFO_FILE
    temporary = path.with_suffix(".json.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(info, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    os.replace(temporary, path)
    return path.resolve()


def main(argv: list[str] | None = None) -> int:
    """``python -m sandbox.portal.cli ...``: the same command without the ``skolsynk`` front."""
    parser = argparse.ArgumentParser(prog="python -m sandbox.portal.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["portal", *(sys.argv[1:] if argv is None else argv)])
    from common.errors import SkolsynkError

    try:
        return int(args.handler(args))
    except SkolsynkError as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
