"""Microsoft's own Python SDK (``msgraph-sdk``, with ``azure-identity`` for the token) reads
the sandbox as it reads Graph: its typed models parse every answer, paging and delta links
included, so a client built on Microsoft's libraries sees the sandbox as it would see Graph."""

from __future__ import annotations

import asyncio
import ssl
import warnings
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import httpx
import pytest

with warnings.catch_warnings():  # kiota warns about its own deprecated names on import
    warnings.simplefilter("ignore", DeprecationWarning)
    from azure.identity import ClientSecretCredential
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core import GraphClientFactory

from tests.conftest import SDS_SAMPLES
from tests.fixtures.graph import GraphSandbox, SandboxTenant

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
#: the SDK imports its request builders lazily, and kiota warns about its own deprecated names
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]
T = TypeVar("T")


def _client(
    sandbox: GraphSandbox, tenant: SandboxTenant
) -> tuple[GraphServiceClient, Any, ClientSecretCredential]:
    """A ``GraphServiceClient`` signed in as the sandbox's app with a client secret, through
    azure-identity (MSAL underneath) against the sandbox's authority, trusting its CA."""
    info = sandbox.info
    credential = ClientSecretCredential(
        tenant.id,
        info["client_id"],
        info["client_secret"],
        authority=info["authority"],
        disable_instance_discovery=True,
        connection_verify=str(sandbox.ca_bundle),
    )
    host = httpx.URL(info["graph_url"]).host
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
    transport = httpx.AsyncHTTPTransport(
        verify=ssl.create_default_context(cafile=str(sandbox.ca_bundle))
    )
    # the SDK wraps the client's transport in its middleware; closing the client does not close
    # this one, so it is handed back to be closed
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport)
    )
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = info["graph_url"]
    return GraphServiceClient(request_adapter=adapter), (http, transport), credential


def _run(sandbox: GraphSandbox, tenant: SandboxTenant, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        client, (http, transport), credential = _client(sandbox, tenant)
        try:
            return await work(client)
        finally:
            await http.aclose()
            await transport.aclose()
            credential.close()

    return asyncio.run(main())


@pytest.fixture
def school(graph_sandbox: GraphSandbox) -> SandboxTenant:
    return graph_sandbox.new_tenant(load=[("sds-classic", SDS_SAMPLES / "classic-25")])


def test_the_sdk_pages_through_users_with_typed_models(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    async def work(client: GraphServiceClient) -> list[Any]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            select=["id", "displayName", "userPrincipalName", "accountEnabled"], top=5
        )
        config = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(
            query_parameters=query
        )
        page = await client.users.get(request_configuration=config)
        users = list(page.value)
        while page.odata_next_link:
            page = await client.users.with_url(page.odata_next_link).get()
            users += page.value
        return users

    users = _run(graph_sandbox, school, work)
    assert len(users) == 24
    assert all(u.account_enabled is True for u in users)
    assert f"OKlein@{school.domain}" in {u.user_principal_name for u in users}


def test_the_sdk_reads_education_classes_with_edm_dates(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    async def work(client: GraphServiceClient) -> list[Any]:
        page = await client.education.classes.get()
        return list(page.value)

    classes = _run(graph_sandbox, school, work)
    assert {c.display_name for c in classes} == {"Math - Algebra 1", "Math - Algebra 2"}
    for klass in classes:  # the SDK parses Edm.Date into datetime.date
        assert klass.term.start_date == date(2017, 7, 1)
        assert klass.term.end_date == date(2018, 6, 30)


def test_the_sdk_follows_delta_to_its_delta_link_and_counts(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    async def work(client: GraphServiceClient) -> tuple[int, str, int, int]:
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            select=["id", "displayName"]
        )
        config = DeltaRequestBuilder.DeltaRequestBuilderGetRequestConfiguration(
            query_parameters=query
        )
        page = await client.users.delta.get(request_configuration=config)
        seen = len(page.value)
        while page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
            seen += len(page.value)
        counting = RequestConfiguration()
        counting.headers.add("ConsistencyLevel", "eventual")
        users = await client.users.count.get(request_configuration=counting)
        groups = await client.groups.count.get(request_configuration=counting)
        return seen, page.odata_delta_link, users, groups

    seen, delta_link, users, groups = _run(graph_sandbox, school, work)
    assert seen == 24
    assert delta_link and "$deltatoken=" in delta_link
    assert (users, groups) == (24, 2)


def test_the_sdk_reads_the_recycle_bin_and_members_by_type_and_restores(
    graph_sandbox: GraphSandbox, school: SandboxTenant
) -> None:
    # the SDK spells these /directory/deletedItems/graph.user, /groups/{id}/members/graph.user
    # and /directory/deletedItems/{id}/restore
    graph = school.graph
    ora = graph.get(f"/users/OKlein@{graph.domain}").json()
    graph.delete_user(ora["id"])
    klass = graph.all_pages("/education/classes?$select=id")[0]

    async def work(client: GraphServiceClient) -> tuple[set[str], int, str]:
        deleted = await client.directory.deleted_items.graph_user.get()
        members = await client.groups.by_group_id(klass["id"]).members.graph_user.get()
        restored = await client.directory.deleted_items.by_directory_object_id(
            ora["id"]
        ).restore.post()
        return {u.id for u in deleted.value}, len(members.value), restored.id

    deleted, members, restored = _run(graph_sandbox, school, work)
    assert deleted == {ora["id"]}
    assert members == 22  # 23 members less Ora, who is in the recycle bin
    assert restored == ora["id"]
    assert graph.get(f"/users/{ora['id']}").status_code == 200
