"""Chaos run: the whole stack through faults on both sides, killed workers and a lost Redis, then
faults off and no manual reconcile; how long until the portal equals Microsoft 365 again.

    python bench/chaos.py [--users 300] [--changes 60] [--seed 7] [--max-wait 240]

Starts Redis (append-only file), the sandbox tenant (a generated municipality), the reference
portal, the listener under gunicorn, two workers and the scheduler, syncs once and subscribes;
gives the portal licences and a manual group of its own. Then, while Graph answers 15 % 429
and 10 % 5xx and the portal 10 % 5xx and 15 % lost answers (written, answered 5xx), it makes
changes of every kind through Graph (creates, renames, class moves, soft deletes, restores,
disables, class renames and deletes, purges, delete-then-restore), SIGKILLs a busy worker twice
(and starts another, as a supervisor would), stops Redis for a few seconds and later SIGKILLs it.
Then every fault is turned off and nothing else is done: no reconcile is started.

The comparison reads only Graph's and the portal's answers (never the planner): every user and
class the portal held after the first sync or that the run created, object by object (users:
userName, given and family name, active, role; classes: name and members). It prints the changes
made, mismatches at 10 s, 30 s and 60 s, the time to converge, duplicates, licences and manual
groups changed, and processes that died. Exit status 0 only when it converged with 0 of each.
``changes.log`` in the work directory lists what was changed and when, for a run that did not.

Over 400 lines on purpose: the stack, the changes and the comparison are one story read top to
bottom, and ``tests/worker/test_chaos.py`` runs the same code, shorter.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.config import Secret, load_config  # noqa: E402
from common.graph import sds  # noqa: E402
from common.state.registry import PortalEnvironment, Tenant  # noqa: E402
from common.state.subscription_lifecycle import ensure_subscriptions  # noqa: E402
from common.state.subscriptions import SubscriptionStore  # noqa: E402
from common.sync import engine  # noqa: E402
from common.sync.services import build_services  # noqa: E402
from sandbox.graph.admin_client import GraphAdmin  # noqa: E402
from skolsynk.stack import Child, Stack, free_port  # noqa: E402

GRAPH_FAULTS = {"throttle_share": 0.15, "error_share": 0.10, "retry_after_seconds": 1}
PORTAL_FAULTS = {"error_share": 0.10, "lost_answer_share": 0.15}
CHECKPOINTS_SECONDS = (10, 30, 60)
KINDS = (
    "create",
    "rename",
    "move",
    "soft_delete",
    "restore",
    "disable",
    "class_rename",
    "class_delete",
    "purge",
    "delete_then_restore",
)


@dataclass
class Figures:
    changes: dict[str, int] = field(default_factory=dict)
    mismatches: dict[int, int] = field(default_factory=dict)
    converged_after: float | None = None
    duplicates: int = 0
    licences_changed: int = 0
    manual_groups_changed: int = 0
    died: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.converged_after is not None
            and self.duplicates == 0
            and self.licences_changed == 0
            and self.manual_groups_changed == 0
            and not self.died
        )


def _ok(answer: requests.Response) -> requests.Response:
    answer.raise_for_status()
    return answer


def patiently(what: str, call: Callable[[], Any], attempts: int = 40) -> Any:
    """An administrator's change through Graph while Graph throttles and fails: try again."""
    for _ in range(attempts - 1):
        try:
            return call()
        except Exception:  # the sandbox answered 429/5xx to the administrator too
            time.sleep(0.2)
    return call()


class Portal:
    """The reference portal's own API for one organisation (not SCIM: what a person sees)."""

    def __init__(self, info: dict[str, Any], org: dict[str, Any]) -> None:
        self.base = f"{info['url']}/api/{org['name']}"
        self.admin = f"{info['url']}/_sandbox"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {org['token']}"
        self.admin_token = info["admin_token"]

    def get(self, what: str) -> list[dict[str, Any]]:
        answer = self.session.get(f"{self.base}/{what}", timeout=30)
        answer.raise_for_status()
        return list(answer.json()[what])

    def post(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.session.post(f"{self.base}/{what}", json=body, timeout=30)
        answer.raise_for_status()
        return dict(answer.json())

    def knobs(self, values: dict[str, float] | None) -> None:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        if values is None:
            requests.delete(f"{self.admin}/knobs", headers=headers, timeout=10).raise_for_status()
        else:
            answer = requests.put(f"{self.admin}/knobs", json=values, headers=headers, timeout=10)
            answer.raise_for_status()


def graph_knobs(info: dict[str, Any], values: dict[str, float] | None) -> None:
    headers = {"Authorization": f"Bearer {info['admin_token']}"}
    verify = info["ca_bundle"]
    url = f"{info['admin_url']}/knobs"
    if values is None:
        values = {"throttle_share": 0.0, "error_share": 0.0}
    requests.put(url, json=values, headers=headers, verify=verify, timeout=10).raise_for_status()


class Chaos:
    """One run: the stack, the tenant, the portal organisation and what the run did."""

    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.args = args
        self.random = random.Random(args.seed)
        self.stack = Stack(workdir)
        self.killed: set[str] = set()
        self.redis_child: Child | None = None
        self.redis_args: list[str] = []
        self.universe_users: set[str] = set()
        self.universe_classes: set[str] = set()
        self.soft_deleted: list[str] = []
        #: the users and classes holding the portal's own licences and manual group: left alone,
        #: so that any change to those is the sync's doing (a purge or class delete would rightly
        #: take a licence with it)
        self.reserved: set[str] = set()
        self.figures = Figures()
        self.restarts = 0

    # --- the stack ----------------------------------------------------------------------------

    def start(self) -> None:
        port = free_port()
        self.stack.redis_url = f"redis://127.0.0.1:{port}/0"
        self.redis_args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        # as deploy/redis.conf runs it: append-only file, fsync every second
        self.redis_args += ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.redis_args += ["--dir", str(self.stack.workdir)]
        self._start_redis()
        self.info = self.stack.start_graph("--generate", str(self.args.users), "--seed", "3")
        tenant_info = self.info["tenants"][0]
        portal_info = self.stack.start_portal("--org", "chaos")
        org = portal_info["organisations"][0]
        self.stack.start_listener(workers=2, threads=4)
        self.workers = self.stack.start_workers(2)
        self.stack.start_scheduler()
        self.services = build_services(load_config(self.stack.env()))
        self.tenant = Tenant(
            id=tenant_info["id"],
            name="Chaos",
            portals={"test": PortalEnvironment(org["scim_url"], Secret(org["token"]))},
        )
        self.services.registry.add(self.tenant)
        self.graph = GraphAdmin(self.info, tenant_info["id"], tenant_info["domain"])
        self.portal = Portal(portal_info, org)
        engine.reconcile_tenant(self.services, self.tenant.id)
        ensure_subscriptions(
            self.services.graph(self.tenant.id),
            SubscriptionStore(self.services.redis, self.services.config.secret_key),
            self.tenant.id,
            self.stack.listener_url,
        )
        for user in self.portal.get("users"):
            if user.get("externalId"):
                self.universe_users.add(user["externalId"])
        for group in self.portal.get("groups"):
            if group.get("externalId"):
                self.universe_classes.add(group["externalId"])
        self._portal_own_things()
        self.school = next(u[sds.SCHOOL_ID] for u in self.graph.users() if u.get(sds.SCHOOL_ID))

    def _start_redis(self) -> None:
        self.restarts += 1
        self.redis_child = self.stack.start(f"redis-{self.restarts}", self.redis_args)
        url = self.stack.redis_url or ""
        client = redis.Redis.from_url(url)
        self.stack.wait(self.redis_child, lambda: bool(client.ping()), what="redis-server")
        client.close()

    def stop_redis(self, *, kill: bool, seconds: float) -> None:
        assert self.redis_child is not None
        self.note(-1, "redis killed" if kill else "redis stopped")
        self.killed.add(self.redis_child.name)
        if kill:
            self.redis_child.signal(signal.SIGKILL)
            self.redis_child.process.wait(timeout=10)
        else:
            self.redis_child.stop()
        time.sleep(seconds)
        self._start_redis()

    def kill_busy_worker(self) -> None:
        from rq import Worker

        client = redis.Redis.from_url(self.stack.redis_url or "")
        victim: Child | None = None
        deadline = time.monotonic() + 5
        while victim is None and time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                busy = {w.pid for w in Worker.all(connection=client) if w.get_state() == "busy"}
                victim = next((c for c in self.workers if c.process.pid in busy), None)
            time.sleep(0.05)
        client.close()
        victim = victim or self.workers[0]
        self.note(-1, "worker killed", str(victim.process.pid))
        self.killed.add(victim.name)
        victim.signal(signal.SIGKILL)
        self.workers.remove(victim)
        # a supervisor starts another
        self.workers += self.stack.start_workers(1)
        self.workers[-1].name = f"worker-restarted-{len(self.killed)}"

    # --- the portal's own things, which the sync must never touch -------------------------------

    def _portal_own_things(self) -> None:
        users = [u for u in self.portal.get("users") if u.get("managed") and u["active"]]
        groups = [g for g in self.portal.get("groups") if g.get("externalId")]
        self.reserved = {u["externalId"] for u in users[:8]} | {g["externalId"] for g in groups[:1]}
        for user in users[:5]:
            self.portal.post(
                "licences", {"product": "Matte 7", "assignedBy": "lärare", "userId": user["id"]}
            )
        for group in groups[:1]:
            self.portal.post(
                "licences", {"product": "Svenska 7", "assignedBy": "lärare", "groupId": group["id"]}
            )
        members = [u["id"] for u in users[5:8]]
        self.portal.post("groups", {"displayName": "Schackklubben", "members": members})
        self.licences_before = self._licences()
        self.manual_before = self._manual_groups()

    def _licences(self) -> set[tuple[tuple[str, str], ...]]:
        return {
            tuple(sorted((k, str(v)) for k, v in x.items())) for x in self.portal.get("licences")
        }

    def _manual_groups(self) -> set[tuple[str, str, tuple[str, ...]]]:
        return {
            (g["id"], g["displayName"], tuple(sorted(g.get("members") or [])))
            for g in self.portal.get("groups")
            if not g.get("externalId")
        }

    # --- changes through Graph ------------------------------------------------------------------

    def classes(self) -> list[dict[str, Any]]:
        return [
            g
            for g in patiently("list groups", self.graph.groups)
            if g["id"] in self.universe_classes and g["id"] not in self.reserved
        ]

    def students(self) -> list[dict[str, Any]]:
        return [
            u
            for u in patiently("list users", self.graph.users)
            if u.get(sds.OBJECT_TYPE) == sds.OBJECT_TYPE_STUDENT
            and u["id"] in self.universe_users
            and u["id"] not in self.reserved
            and u.get("accountEnabled")
        ]

    def note(self, number: int, kind: str, *ids: str) -> None:
        """What the run changed, for a person reading a run that did not converge."""
        with (self.stack.workdir / "changes.log").open("a") as out:
            out.write(f"{time.strftime('%H:%M:%S')} {number:3d} {kind} {' '.join(ids)}\n")

    def change(self, kind: str, number: int) -> None:
        g, pick = self.graph, self.random.choice
        if kind == "create":
            cls = pick(self.classes())
            school = cls.get(sds.SCHOOL_ID) or self.school
            user = patiently(
                "create",
                lambda: g.create_student("Chaos", f"Nummer{number}", school_id=school, grade="7"),
            )
            self.universe_users.add(user["id"])
            patiently("add member", lambda: g.add_member(cls["id"], user["id"]))
            self.note(number, kind, user["id"], cls["id"])
        elif kind == "rename":
            user = pick(self.students())
            patiently("rename", lambda: g.rename_user(user["id"], "Omdöpt", f"Namn{number}"))
            self.note(number, kind, user["id"])
        elif kind == "move":
            user = pick(self.students())
            groups = self.classes()
            mine = [c for c in groups if user["id"] in self._members(c["id"])]
            target = pick([c for c in groups if c not in mine])
            for cls in mine:
                patiently("remove member", lambda c=cls: g.remove_member(c["id"], user["id"]))
            patiently("add member", lambda: g.add_member(target["id"], user["id"]))
            self.note(number, kind, user["id"], *(c["id"] for c in mine), "->", target["id"])
        elif kind == "soft_delete":
            user = pick(self.students())
            patiently("delete", lambda: g.delete_user(user["id"]))
            self.soft_deleted.append(user["id"])
            self.note(number, kind, user["id"])
        elif kind == "restore":
            if self.soft_deleted:
                user_id = self.soft_deleted.pop(0)
                patiently("restore", lambda: g.restore(user_id))
                self.note(number, kind, user_id)
        elif kind == "disable":
            user = pick(self.students())
            body = {"accountEnabled": False}
            patiently("disable", lambda: _ok(g.patch(f"/users/{user['id']}", json=body)))
            self.note(number, kind, user["id"])
        elif kind == "class_rename":
            cls = pick(self.classes())
            body = {"displayName": f"{cls['displayName']} ({number})"}
            patiently("rename class", lambda: _ok(g.patch(f"/groups/{cls['id']}", json=body)))
            self.note(number, kind, cls["id"])
        elif kind == "class_delete":
            cls = pick(self.classes())
            patiently("delete class", lambda: g.delete_group(cls["id"]))
            self.note(number, kind, cls["id"])
        elif kind == "purge":
            user = pick(self.students())
            patiently("delete", lambda: g.delete_user(user["id"]))
            patiently("purge", lambda: g.purge(user["id"]))
            self.note(number, kind, user["id"])
        elif kind == "delete_then_restore":
            user = pick(self.students())
            patiently("delete", lambda: g.delete_user(user["id"]))
            patiently("restore", lambda: g.restore(user["id"]))
            self.note(number, kind, user["id"])
        self.figures.changes[kind] = self.figures.changes.get(kind, 0) + 1

    def _members(self, group_id: str) -> set[str]:
        found = patiently(
            "members", lambda: self.graph.all_pages(f"/groups/{group_id}/members?$select=id")
        )
        return {m["id"] for m in found}

    # --- comparing Graph's and the portal's answers ----------------------------------------------

    def mismatches(self) -> list[str]:
        """Every difference between Microsoft 365 and the portal, object by object."""
        graph_users = {u["id"]: u for u in self.graph.users()}
        deleted = {
            d["id"]
            for d in self.graph.all_pages("/directory/deletedItems/microsoft.graph.user?$select=id")
        }
        portal_users = [u for u in self.portal.get("users") if u.get("externalId")]
        by_entra = {u["externalId"]: u for u in portal_users}
        found: list[str] = []
        for entra_id in sorted(self.universe_users):
            mine = by_entra.get(entra_id)
            if entra_id in graph_users:
                user = graph_users[entra_id]
                if mine is None:
                    found.append(f"user {entra_id} missing in the portal")
                    continue
                email = (user.get("mail") or user.get("userPrincipalName") or "").casefold()
                expected = {
                    "userName": email,
                    "givenName": user.get("givenName"),
                    "familyName": user.get("surname"),
                    "active": bool(user.get("accountEnabled")),
                }
                have = {
                    "userName": (mine.get("userName") or "").casefold(),
                    "givenName": mine.get("givenName"),
                    "familyName": mine.get("familyName"),
                    "active": mine.get("active"),
                }
                kind = user.get(sds.OBJECT_TYPE)
                if kind in (sds.OBJECT_TYPE_STUDENT, sds.OBJECT_TYPE_TEACHER):
                    expected["role"] = kind.casefold()
                    have["role"] = (mine.get("role") or "").casefold()
                for key, value in expected.items():
                    if have.get(key) != value:
                        found.append(f"user {entra_id}: {key} {have.get(key)!r} != {value!r}")
            elif entra_id in deleted:
                if mine is not None and mine.get("active"):
                    found.append(f"user {entra_id} deleted in Microsoft 365, active in the portal")
            elif mine is not None:
                found.append(f"user {entra_id} purged in Microsoft 365, still in the portal")
        portal_groups = {
            g["externalId"]: g for g in self.portal.get("groups") if g.get("externalId")
        }
        portal_ids = {u["id"]: u["externalId"] for u in portal_users}
        live_users = set(graph_users)
        graph_groups = {g["id"]: g for g in self.graph.groups()}
        for class_id in sorted(self.universe_classes):
            mine = portal_groups.get(class_id)
            if class_id not in graph_groups:
                if mine is not None:
                    found.append(f"class {class_id} deleted in Microsoft 365, still in the portal")
                continue
            if mine is None:
                found.append(f"class {class_id} missing in the portal")
                continue
            if mine.get("displayName") != graph_groups[class_id]["displayName"]:
                found.append(f"class {class_id}: name {mine.get('displayName')!r}")
            expected = self._members(class_id) & live_users & self.universe_users
            have = {portal_ids.get(m) for m in mine.get("members") or []} & live_users
            if expected != have:
                found.append(
                    f"class {class_id}: members missing {sorted(expected - have)}, "
                    f"extra {sorted(x for x in have - expected if x)}"
                )
        return found

    def duplicates(self) -> int:
        users = [u for u in self.portal.get("users") if u.get("externalId")]
        groups = [g for g in self.portal.get("groups") if g.get("externalId")]
        ids = [u["externalId"] for u in users] + [g["externalId"] for g in groups]
        names = [(u.get("userName") or "").casefold() for u in self.portal.get("users")]
        return (len(ids) - len(set(ids))) + (len(names) - len(set(names)))

    # --- the run --------------------------------------------------------------------------------

    def run(self) -> Figures:
        self.start()
        graph_knobs(self.info, GRAPH_FAULTS)
        self.portal.knobs(PORTAL_FAULTS)
        count = self.args.changes
        events = {
            count * 1 // 6: self.kill_busy_worker,
            count * 2 // 6: lambda: self.stop_redis(kill=False, seconds=3),
            count * 3 // 6: self.kill_busy_worker,
            count * 4 // 6: lambda: self.stop_redis(kill=True, seconds=2),
        }
        kinds = [KINDS[i % len(KINDS)] for i in range(count)]
        for number, kind in enumerate(kinds):
            if number in events:
                events[number]()
            self.change(kind, number)
        graph_knobs(self.info, None)
        self.portal.knobs(None)
        faults_off = time.monotonic()
        for checkpoint in (0, *CHECKPOINTS_SECONDS):
            while time.monotonic() - faults_off < checkpoint:
                left = self.mismatches() if self.figures.converged_after is None else []
                if not left and self.figures.converged_after is None:
                    self.figures.converged_after = time.monotonic() - faults_off
                time.sleep(1)
            if checkpoint:
                self.figures.mismatches[checkpoint] = len(self.mismatches())
        while self.figures.converged_after is None:
            left = self.mismatches()
            if not left:
                self.figures.converged_after = time.monotonic() - faults_off
            elif time.monotonic() - faults_off > self.args.max_wait:
                # what the guards hold for a person explains a difference no job will close
                held = self.services.safety.held(self.tenant.id)
                self.figures.remaining = left + [
                    f"held for approval: {h.action.kind} {h.action.key} ({h.why})" for h in held
                ]
                break
            time.sleep(1)
        self.figures.duplicates = self.duplicates()
        self.figures.licences_changed = len(self._licences() ^ self.licences_before)
        self.figures.manual_groups_changed = len(self._manual_groups() ^ self.manual_before)
        self.figures.died = [
            c.name
            for c in self.stack.children
            if c.name not in self.killed and not c.alive and not c.name.startswith("redis")
        ]
        return self.figures


def report(figures: Figures) -> None:
    total = sum(figures.changes.values())
    kinds = ", ".join(f"{k} {v}" for k, v in figures.changes.items())
    print(f"changes made                 {total} ({kinds})")
    for checkpoint in CHECKPOINTS_SECONDS:
        left = figures.mismatches.get(checkpoint, "-")
        print(f"mismatches after {checkpoint:>2} s         {left}")
    converged = figures.converged_after
    took = f"{converged:.1f} s" if converged is not None else "NOT CONVERGED"
    print(f"time to converge             {took}")
    print(f"duplicates                   {figures.duplicates}")
    print(f"licences changed             {figures.licences_changed}")
    print(f"manual groups changed        {figures.manual_groups_changed}")
    print(f"processes that died          {len(figures.died)} {' '.join(figures.died)}")
    for line in figures.remaining[:20]:
        print(f"  still different: {line}")


def run(args: argparse.Namespace) -> Figures:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="skolsynk-chaos-"))
    chaos = Chaos(workdir, args)
    try:
        return chaos.run()
    finally:
        chaos.stack.stop()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--changes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-wait", type=float, default=240.0, help="seconds to converge")
    parser.add_argument("--workdir", default="", help="keep the processes' logs here")
    return parser.parse_args(argv)


def main() -> int:
    args = parse()
    if os.environ.get("REDIS_URL"):
        print("(REDIS_URL is ignored: the run uses a Redis of its own)")
    figures = run(args)
    report(figures)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
