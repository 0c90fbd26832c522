"""Registering a tenant: GUIDs and domains, one portal organisation per tenant, tokens from a
file or standard input, options checked as options; ``skolsynk`` run as a process."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.fixtures.cli import skolsynk

pytestmark = pytest.mark.slow  # each test runs the command line against real processes


def test_a_second_tenant_on_the_same_portal_is_refused_however_its_url_is_written(
    make_world,
) -> None:
    world = make_world()
    url = world.portal.scim_url  # http://127.0.0.1:PORT/scim/v2/ORG
    scheme, rest = url.split("://", 1)
    host, path = rest.split("/", 1)
    spellings = [
        url + "/",
        f"{scheme}://{host}/{path.upper()}",
        f"{scheme.upper()}://{host}//{path}/",
        f"{scheme}://{host}/scim/v2/./{path.rsplit('/', 1)[1]}",
    ]
    before = skolsynk(world, "tenant", "list", "--format", "json").stdout
    for spelling in spellings:
        added = skolsynk(
            world,
            "tenant",
            "add",
            str(uuid.uuid4()),
            "--name",
            "Malmö stad",
            "--test-portal",
            spelling,
            "--test-token",
            "some-token-value",
        )
        assert added.returncode == 1, (spelling, added.stdout)
        assert f"is already the test portal of tenant Skola {world.microsoft.name}" in (
            added.stderr
        ), spelling
        assert "Traceback" not in added.stderr
    assert skolsynk(world, "tenant", "list", "--format", "json").stdout == before

    # tenant set is held to the same rule
    other = world.portal_server.new_organisation()
    second = str(uuid.uuid4())
    assert skolsynk(
        world, "tenant", "add", second, "--name", "Malmö stad",
        "--test-portal", other.scim_url, "--test-token", other.token,
    ).returncode == 0  # fmt: skip
    moved = skolsynk(world, "tenant", "set", second, "--test-portal", url + "/")
    assert moved.returncode == 1
    assert "one portal organisation belongs to one tenant" in moved.stderr


def test_https_default_port_is_the_same_portal(make_world) -> None:
    world = make_world()
    first = str(uuid.uuid4())
    common = ("--test-token", "tok-1234567890")
    assert skolsynk(
        world, "tenant", "add", first, "--name", "A",
        "--test-portal", "https://Portal.Example/scim/v2/lund", *common,
    ).returncode == 0  # fmt: skip
    again = skolsynk(
        world, "tenant", "add", str(uuid.uuid4()), "--name", "B",
        "--test-portal", "https://portal.example:443/scim/v2/lund/", *common,
    )  # fmt: skip
    assert again.returncode == 1
    assert "already the test portal of tenant A" in again.stderr


def test_a_tenant_given_by_its_domain_is_looked_up_and_cannot_be_registered_twice(
    make_world,
) -> None:
    world = make_world()  # registered under its id
    other = world.portal_server.new_organisation()
    by_domain = skolsynk(
        world, "tenant", "add", world.microsoft.domain, "--name", "Again",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert by_domain.returncode == 1
    assert f"Tenant {world.tenant_id} is already registered" in by_domain.stderr

    fresh = world.graph_sandbox.new_tenant()
    added = skolsynk(
        world, "tenant", "add", fresh.domain.upper(), "--name", "Ny skola",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert f"({fresh.id}, looked up from {fresh.domain.upper()})" in added.stdout
    shown = json.loads(skolsynk(world, "tenant", "show", "Ny skola", "--format", "json").stdout)
    assert shown["id"] == fresh.id

    unknown = skolsynk(
        world, "tenant", "add", "ingen-sadan.onmicrosoft.com", "--name", "X",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert unknown.returncode == 1
    assert "No Microsoft 365 tenant owns the domain 'ingen-sadan.onmicrosoft.com'" in (
        unknown.stderr
    )


@pytest.mark.parametrize("given", ["tenant-x", "lund", "1234", "{" + "0" * 36 + "}"])
def test_a_tenant_id_that_is_no_guid_is_refused(make_world, given: str) -> None:
    world = make_world()
    other = world.portal_server.new_organisation()
    added = skolsynk(
        world, "tenant", "add", given, "--name", "X",
        "--test-portal", other.scim_url, "--test-token", other.token,
    )  # fmt: skip
    assert added.returncode == 1
    assert f"{given!r} is not a Microsoft 365 tenant id." in added.stderr
    assert "a GUID such as" in added.stderr


def test_tokens_come_from_a_file_or_standard_input(make_world, tmp_path: Path) -> None:
    world = make_world(sample="classic-min")
    token_file = tmp_path / "token"
    token_file.write_text("wrong-token-from-a-file\n")
    from_file = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token-file", str(token_file)
    )
    assert from_file.returncode == 0, from_file.stderr
    refused = skolsynk(world, "reconcile", world.tenant_id)
    assert refused.returncode == 1 and "token" in refused.stderr.lower()

    from_stdin = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token", "-",
        stdin=world.portal.token + "\n",
    )  # fmt: skip
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert skolsynk(world, "reconcile", world.tenant_id).returncode == 0
    assert len(world.portal.users()) == 24

    empty = skolsynk(world, "tenant", "set", world.tenant_id, "--test-token", "-", stdin="")
    assert empty.returncode == 1
    assert "--test-token - (standard input) gave an empty token." in empty.stderr
    missing = skolsynk(
        world, "tenant", "set", world.tenant_id, "--test-token-file", str(tmp_path / "nope")
    )
    assert missing.returncode == 1
    assert "--test-token-file" in missing.stderr and "cannot read it" in missing.stderr


def test_tenant_options_are_checked_as_options(make_world) -> None:
    world = make_world()
    empty = skolsynk(world, "tenant", "set", world.tenant_id, "--test-portal", "")
    assert empty.returncode == 1
    assert "--test-portal is empty" in empty.stderr

    again = skolsynk(world, "tenant", "add", world.tenant_id, "--name", "Någon annan")
    assert again.returncode == 1
    assert f"Tenant {world.tenant_id} is already registered" in again.stderr

    no_portal = skolsynk(world, "tenant", "add", str(uuid.uuid4()), "--name", "Ny")
    assert no_portal.returncode == 1
    assert "needs its test portal: add --test-portal URL" in no_portal.stderr
    assert "variables" not in no_portal.stderr

    token_only = skolsynk(world, "tenant", "set", world.tenant_id, "--production-token", "x" * 20)
    assert token_only.returncode == 1
    assert "--production-token was given, but tenant" in token_only.stderr
    assert "add --production-portal URL" in token_only.stderr

    share = skolsynk(world, "tenant", "set", world.tenant_id, "--max-removal-share", "5")
    assert share.returncode == 1 and "--max-removal-share must be" in share.stderr

    add_help = skolsynk(world, "tenant", "add", "--help").stdout
    assert "--all-schools" not in add_help and "--clear-lists" not in add_help
    assert "exit codes:" in add_help and "3  the configuration" in add_help
    assert "exit codes:" in skolsynk(world, "--help").stdout
