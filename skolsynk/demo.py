"""``skolsynk demo``: the whole system on this machine, doing its whole job, in one command.

Starts a Redis of its own (unless REDIS_URL names one: then everything it wrote there is
deleted on the way out), the sandbox tenant with a generated municipality, the
reference portal, the listener under gunicorn, two workers and the scheduler; registers the
tenant, previews and runs the first sync, then makes a series of changes in Microsoft 365 through
the sandbox's Graph API and shows each one reaching the portal through change notifications.

Failure policy: a child process that dies or a change that does not arrive in time ends the demo
with a sentence and a non-zero exit code; every child process is stopped on the way out, on
Ctrl-C too.

Long because the demo is one story read top to bottom: start, first sync, live changes, a mass
removal held for approval, the check; each step is a short function, in the order it runs.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common.config import Secret, load_config, redis_url_setting
from common.graph import sds
from common.state.dispatch import Dispatcher
from common.state.registry import PortalEnvironment, Tenant
from common.state.subscription_lifecycle import ensure_subscriptions
from common.state.subscriptions import SubscriptionStore
from common.state.tenant_work import purge_tenant
from common.sync import engine
from common.sync.services import Services, build_services
from sandbox.graph.admin_client import GraphAdmin
from skolsynk import demo_signin
from skolsynk.output import ProgressBar, table
from skolsynk.stack import Stack, StackError, redis_answers, url_without_password
from skolsynk.sync_cli import preview_text

DEFAULT_USERS = 300
DEMO_SEED = 2026
CHANGE_TIMEOUT_SECONDS = 30.0
#: how many students the mass removal deletes at once (above the default threshold of 20)
MASS_REMOVAL = 30


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole system on this machine and watch it keep a portal in step",
        description=(
            "Start a simulated Microsoft 365 school tenant, the reference portal, the listener, "
            "workers and the scheduler; sync; then change things in Microsoft 365 and watch "
            "each change reach the portal."
        ),
    )
    parser.add_argument(
        "--users",
        type=int,
        default=DEFAULT_USERS,
        help=f"size of the municipality ({DEFAULT_USERS})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit non-zero unless the portal ends up as Microsoft 365",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="stay up afterwards to explore (Ctrl-C stops)"
    )
    parser.add_argument("--workdir", type=Path, help="where logs and data go (default: a temp dir)")
    parser.set_defaults(handler=run_demo)


@dataclass
class Step:
    what: str
    seconds: float | None
    note: str = ""


@dataclass
class Demo:
    stack: Stack
    services: Services
    graph: GraphAdmin
    tenant: Tenant
    org: dict[str, Any]
    steps: list[Step] = field(default_factory=list)

    # --- portal reads -----------------------------------------------------------------------

    def portal_users(self) -> list[dict[str, Any]]:
        portal = self.services.portal(self.tenant)
        return [
            {
                "id": u.id,
                "externalId": u.external_id,
                "userName": u.user_name,
                "familyName": u.family_name,
                "active": u.active,
            }
            for u in portal.list_users()
        ]

    def portal_user(self, entra_id: str) -> dict[str, Any] | None:
        found = self.services.portal(self.tenant).find_users(external_ids=[entra_id])
        if not found:
            return None
        u = found[0]
        return {"id": u.id, "familyName": u.family_name, "active": u.active}

    def in_class(self, class_id: str, entra_id: str) -> bool | None:
        """Whether the user is a member of the class in the portal (None: no such class)."""
        portal = self.services.portal(self.tenant)
        group = portal.find_group(class_id)
        if group is None:
            return None
        users = portal.find_users(external_ids=[entra_id])
        return bool(users) and users[0].id in group.member_ids

    # --- timing -------------------------------------------------------------------------------

    def timed(self, what: str, change: Callable[[], object], arrived: Callable[[], bool]) -> float:
        change()
        started = time.monotonic()
        deadline = started + CHANGE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self.stack.check_alive()
            if arrived():
                seconds = time.monotonic() - started
                self.steps.append(Step(what, seconds))
                print(f"  ✓ {what}: in the portal after {seconds:.2f} s")
                return seconds
            time.sleep(0.05)
        self.steps.append(Step(what, None, "did not arrive"))
        raise StackError(
            f"{what}: the change did not reach the portal within {CHANGE_TIMEOUT_SECONDS:.0f} s."
        )


def run_demo(args: argparse.Namespace) -> int:
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="skolsynk-demo-"))
    stack = Stack(workdir, redis_url=explicit_redis_url())
    # Ctrl-C and SIGTERM both end in the finally below, which stops every child
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    demo: Demo | None = None
    try:
        demo = start(stack, args.users)
        start_admin(demo)
        first_sync(demo)
        live_changes(demo)
        demo_signin.sign_in_story(demo, show_how=args.keep_running)
        ok = finish(demo, check=args.check)
        if args.keep_running:
            explore(demo)
        return 0 if ok or not args.check else 1
    finally:
        stack.stop()
        if demo is not None and stack.shared_redis:
            # someone else's Redis: take away everything the demo wrote there
            purge_tenant(demo.services.redis, demo.tenant.id)
        print(f"Stopped every process of the demo. Logs are in {workdir}")


def explicit_redis_url() -> str | None:
    """REDIS_URL when it is set, said at once (before anything starts) when no Redis answers
    there, instead of after the listener's long wait; the password, if any, is not shown."""
    url = redis_url_setting()
    if url and not redis_answers(url):
        parts = urlsplit(url)
        shown = (
            parts._replace(netloc=f"***@{parts.hostname}:{parts.port}") if parts.password else parts
        )
        raise StackError(
            f"Redis is not reachable at REDIS_URL {shown.geturl()}.",
            hint="Start Redis there, or unset REDIS_URL and the demo starts its own.",
        )
    return url


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def start(stack: Stack, users: int) -> Demo:
    print("Starting Skolsynk and its stand-ins on this machine…")
    redis_url = stack.ensure_redis()
    print(
        f"  Redis: {url_without_password(redis_url)}"
        + (" (shared: cleaned up afterwards)" if stack.shared_redis else "")
    )
    info = stack.start_graph("--generate", str(users), "--seed", str(DEMO_SEED))
    tenant_info = info["tenants"][0]
    print(f"  Microsoft 365 (sandbox): {tenant_info['name']}, {tenant_info['domain']}")
    portal = stack.start_portal(
        "--org", "demo", "--microsoft", str(stack.workdir / "graph" / "sandbox.json")
    )
    org = portal["organisations"][0]
    print(f"  Portal (reference): {portal['url']}/")
    listener = stack.start_listener()
    print(f"  Listener (gunicorn): {listener}")
    stack.start_workers(2)
    stack.start_scheduler()
    print("  Workers: 2, scheduler: 1")
    services = build_services(load_config(stack.env()))
    tenant = Tenant(
        id=tenant_info["id"],
        name=f"Demo {tenant_info['name']}",
        portals={"test": PortalEnvironment(org["scim_url"], Secret(org["token"]))},
    )
    if stack.shared_redis:
        # what an earlier demo left (one stopped by force); the demo's tenant is its own
        purge_tenant(services.redis, tenant.id)
    services.registry.add(tenant)
    graph = GraphAdmin(info, tenant_info["id"], tenant_info["domain"])
    return Demo(stack, services, graph, tenant, org)


def start_admin(demo: Demo) -> str:
    """The school administrator's web app (the Procfile's ``admin``), and how to sign in."""
    import requests

    from skolsynk.stack import free_port

    stack = demo.stack
    url = f"http://127.0.0.1:{free_port()}"
    root = Path(__file__).resolve().parent.parent
    child = stack.start(
        "admin",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(root / "deploy" / "gunicorn.conf.py"),
            "--bind",
            url.removeprefix("http://"),
            "admin.app:create_app()",
        ],
        env={**stack.env(), "SKOLSYNK_ADMIN_URL": url, "WEB_CONCURRENCY": "1"},
    )
    stack.wait(
        child,
        lambda: requests.get(f"{url}/", timeout=1).status_code == 200,
        what="the admin app",
    )
    graph = stack.graph or {}
    administrator = graph.get("tenants", [{}])[0].get("administrator", "")
    print(f"  Admin app (gunicorn): {url}/")
    # the sandbox's one demo password, printed so that a person can click through the app
    print(f"    sign in as {administrator}, password {graph.get('people_password', '')}")
    return url


def first_sync(demo: Demo) -> None:
    print()
    print("Before the first sync, the portal already holds two accounts of its own:")
    students = [
        u for u in demo.graph.users() if u.get(sds.OBJECT_TYPE) == "Student" and u.get("mail")
    ]
    adopted, lookalike = students[0], students[1]
    portal = demo.services.portal(demo.tenant)
    existing = portal.create_user(
        {
            "userName": adopted["mail"].upper(),
            "email": adopted["mail"].upper(),
            "givenName": adopted["givenName"],
            "familyName": adopted["surname"],
            "displayName": adopted["displayName"],
        }
    )
    print(f"  {adopted['mail'].upper()} (same e-mail in other letter case: it will be adopted)")
    portal.create_user(
        {
            "userName": "privat.konto@example.org",
            "email": "privat.konto@example.org",
            "givenName": lookalike["givenName"],
            "familyName": lookalike["surname"],
            "displayName": lookalike["displayName"],
            "schools": (lookalike.get(sds.SCHOOL_ID) or "",),
        }
    )
    print(f"  privat.konto@example.org ({lookalike['displayName']}, another e-mail: a collision)")

    print()
    view = engine.preview(demo.services, demo.tenant.id)
    print(_indent(preview_text(view, limit=3)))
    print()
    progress = ProgressBar()
    started = time.monotonic()
    report = engine.reconcile_tenant(
        demo.services, demo.tenant.id, status=progress.status, progress=progress
    )
    progress.finish()
    kept = demo.services.portal(demo.tenant).get_user(existing.id)
    print(f"Adopted {kept.user_name}: same portal account {kept.id}, now linked to Microsoft 365.")
    print(
        f"First sync: {report.written} changes in {time.monotonic() - started:.1f} s "
        f"({report.microsoft_users} students and teachers, {report.microsoft_classes} classes, "
        f"{report.graph_requests} Graph requests)."
    )
    ensure_subscriptions(
        demo.services.graph(demo.tenant.id),
        SubscriptionStore(demo.services.redis, demo.services.config.secret_key),
        demo.tenant.id,
        demo.stack.listener_url,
    )
    print("Subscribed to changes of users and groups (Graph validated the listener's URL).")


def live_changes(demo: Demo) -> None:
    print()
    print("Changing things in Microsoft 365; each change reaches the portal by notification:")
    graph = demo.graph
    classes = [
        g
        for g in graph.groups()
        if g.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_SECTION and g.get(sds.SCHOOL_ID)
    ]
    home, other, doomed = classes[0], classes[1], classes[2]
    school = home[sds.SCHOOL_ID]

    new: dict[str, Any] = {}

    def create() -> None:
        new.update(graph.create_student("Saga", "Öhman", school_id=school, grade="7"))
        graph.add_member(home["id"], new["id"])

    demo.timed(
        f"new student Saga Öhman in {home['displayName']}",
        create,
        lambda: bool(demo.in_class(home["id"], new["id"])),
    )

    teacher = next(u for u in graph.users() if u.get(sds.OBJECT_TYPE) == "Teacher")
    demo.timed(
        f"teacher {teacher['displayName']} renamed to {teacher['givenName']} Bergström",
        lambda: graph.rename_user(teacher["id"], teacher["givenName"], "Bergström"),
        lambda: (demo.portal_user(teacher["id"]) or {}).get("familyName") == "Bergström",
    )

    def move() -> None:
        graph.remove_member(home["id"], new["id"])
        graph.add_member(other["id"], new["id"])

    demo.timed(
        f"Saga moved to {other['displayName']}",
        move,
        lambda: (
            bool(demo.in_class(other["id"], new["id"]))
            and demo.in_class(home["id"], new["id"]) is False
        ),
    )
    account = demo.portal_user(new["id"])
    demo.timed(
        "Saga deleted (recycle bin): deactivated",
        lambda: graph.delete_user(new["id"]),
        lambda: (demo.portal_user(new["id"]) or {}).get("active") is False,
    )
    demo.timed(
        "Saga restored: the same account active again",
        lambda: graph.restore(new["id"]),
        lambda: (
            (u := demo.portal_user(new["id"])) is not None
            and u["active"] is True
            and u["id"] == (account or {}).get("id")
        ),
    )
    demo.timed(
        f"class {doomed['displayName']} deleted",
        lambda: graph.delete_group(doomed["id"]),
        lambda: demo.in_class(doomed["id"], new["id"]) is None,
    )
    mass_removal(demo, school)


def mass_removal(demo: Demo, school: str) -> None:
    graph = demo.graph
    victims = [u for u in graph.users() if u.get(sds.OBJECT_TYPE) == "Student" and u.get("mail")][
        -MASS_REMOVAL:
    ]
    print(f"  … deleting {len(victims)} students at once (a mistake in the student register?)")
    for user in victims:
        graph.delete_user(user["id"])
    ids = {u["id"] for u in victims}

    def settled() -> tuple[int, int]:
        held = {h.action.object_id for h in demo.services.safety.held(demo.tenant.id)}
        inactive = {
            u["externalId"]
            for u in demo.portal_users()
            if not u["active"] and u["externalId"] in ids
        }
        return len(inactive), len(held & ids)

    deadline = time.monotonic() + CHANGE_TIMEOUT_SECONDS
    while time.monotonic() < deadline and sum(settled()) < len(ids):
        demo.stack.check_alive()
        time.sleep(0.2)
    applied, held = settled()
    note = f"{applied} deactivated, {held} held for approval"
    demo.steps.append(Step(f"mass removal of {len(ids)} students", None, note))
    print(f"  ✓ mass removal: {note} (more than 20 removals within 15 minutes are held)")
    taken, report = engine.approve_held(demo.services, demo.tenant.id)
    print(f"  ✓ an administrator approved the {len(taken)} held removals: {report.written} written")


def live_work_done(demo: Demo) -> bool:
    """Wait (up to ``CHANGE_TIMEOUT_SECONDS``) until no real-time job is queued, scheduled or
    running, twice in a row; whether it came. A class job that came while the approval held the
    tenant's lease is queued again for a moment later: the comparison waits for it."""
    dispatcher = Dispatcher(demo.services.redis)
    deadline = time.monotonic() + CHANGE_TIMEOUT_SECONDS
    quiet = 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if dispatcher.live_jobs_under_way() == 0 else 0
        if quiet >= 2:
            return True
        demo.stack.check_alive()
        time.sleep(0.2)
    return False


def finish(demo: Demo, *, check: bool) -> bool:
    print()
    latencies = [s.seconds for s in demo.steps if s.seconds is not None]
    print(
        table(
            ("CHANGE IN MICROSOFT 365", "REACHED THE PORTAL"),
            (
                (s.what, f"{s.seconds:.2f} s" if s.seconds is not None else s.note)
                for s in demo.steps
            ),
        )
    )
    if latencies:
        print(
            f"Latency: median {statistics.median(latencies):.2f} s, "
            f"slowest {max(latencies):.2f} s over {len(latencies)} changes."
        )
    if not live_work_done(demo):
        print(f"Real-time work was still under way after {CHANGE_TIMEOUT_SECONDS:.0f} s.")
    view = engine.preview(demo.services, demo.tenant.id)
    remaining = len(view.plan.actions)
    same = remaining == 0
    print(
        "The portal matches Microsoft 365 exactly."
        if same
        else f"The portal differs from Microsoft 365 in {remaining} ways:"
    )
    for action in view.plan.actions[:10]:
        print(f"  {action.kind.value}: {action.label}: {action.reason}")
    print()
    print("Where to look:")
    print(f"  the portal's pages: {demo.stack.portal['url']}/demo/")
    print(f"  metrics: {demo.stack.listener_url}/metrics")
    print(f"  logs of every process: {demo.stack.workdir}")
    if check and not same:
        print("Check failed: the portal does not match Microsoft 365.", file=sys.stderr)
    return same


def explore(demo: Demo) -> None:
    env_file = demo.stack.workdir / "demo.env"
    env_file.write_text("".join(f"export {k}='{v}'\n" for k, v in demo.stack.env().items()))
    env_file.chmod(0o600)
    print()
    print(f"Still running. To use the skolsynk command against it: source {env_file}")
    print(f"  then for example: skolsynk status; skolsynk preview {demo.tenant.id}")
    print("Press Ctrl-C to stop.")
    try:
        while True:
            demo.stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        print()


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" if line else "" for line in text.splitlines())
