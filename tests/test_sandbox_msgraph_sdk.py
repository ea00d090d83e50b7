"""The official msgraph-sdk (kiota + httpx) accepts the sandbox as Microsoft Graph."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import msal
import pytest

msgraph = pytest.importorskip("msgraph")
from azure.core.credentials import AccessToken  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_authentication_azure.azure_identity_authentication_provider import (  # noqa: E402
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.models.invitation import Invitation  # noqa: E402
from msgraph.generated.users.users_request_builder import UsersRequestBuilder  # noqa: E402
from msgraph_core import GraphClientFactory  # noqa: E402

SCOPE = "https://graph.microsoft.com/.default"


class MsalCredential:
    """An azure-core TokenCredential backed by MSAL's ConfidentialClientApplication."""

    def __init__(self, tenant: dict, session) -> None:
        self._app = msal.ConfidentialClientApplication(
            tenant["client_id"], client_credential=tenant["client_secret"], authority=tenant["authority"],
            instance_discovery=False, http_client=session)

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        result = self._app.acquire_token_for_client(list(scopes) or [SCOPE])
        assert "access_token" in result, result.get("error_description")
        return AccessToken(result["access_token"], int(time.time()) + int(result["expires_in"]))


def make_client(sandbox, tenant_name: str) -> GraphServiceClient:
    info = sandbox.info
    host = info["base_url"].split("://", 1)[1].rsplit(":", 1)[0]
    ctx = ssl.create_default_context(cafile=info["ca_file"])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ctx, trust_env=False))
    auth = AzureIdentityAuthenticationProvider(MsalCredential(sandbox.tenant(tenant_name), sandbox.session()),
                                               scopes=[SCOPE], allowed_hosts=[host])
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = info["graph_url"]
    return GraphServiceClient(request_adapter=adapter)


def test_graph_service_client_lists_gets_and_invites(sandbox):
    client = make_client(sandbox, "fabrikam")

    async def run():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            top=25, select=["id", "displayName", "userPrincipalName", "accountEnabled"])
        config = RequestConfiguration(query_parameters=query)
        page = await client.users.get(request_configuration=config)
        assert len(page.value) == 25 and page.odata_next_link
        first = page.value[0]
        assert first.id and first.user_principal_name and isinstance(first.account_enabled, bool)

        one = await client.users.by_user_id(first.id).get()
        assert one.id == first.id and one.user_principal_name == first.user_principal_name

        inv = await client.invitations.post(Invitation(
            invited_user_email_address="sdk.guest@example.org", invite_redirect_url="https://myapps.microsoft.com",
            invited_user_type="Member", send_invitation_message=False, invited_user_display_name="SDK Guest"))
        assert inv.status == "PendingAcceptance" and inv.invited_user and inv.invited_user.id
        guest = await client.users.by_user_id(inv.invited_user.id).get()
        assert guest.user_principal_name == "sdk.guest_example.org#EXT#@fabrikam.onmicrosoft.com"
        assert guest.mail == "sdk.guest@example.org"
        return True

    assert asyncio.run(run())


def test_graph_service_client_surfaces_graph_errors(sandbox):
    from kiota_abstractions.api_error import APIError

    client = make_client(sandbox, "fabrikam")

    async def run():
        with pytest.raises(APIError) as err:
            await client.users.by_user_id("00000000-0000-0000-0000-000000000000").get()
        return err.value

    exc = asyncio.run(run())
    assert exc.response_status_code == 404
    assert exc.error.code == "Request_ResourceNotFound"


# ---- conformance extensions: paging, delta, batch, cast alias, alternate key, ODataError ----------------
def test_page_iterator_walks_every_page(sandbox):
    """msgraph_core PageIterator follows @odata.nextLink until it is absent (concepts/paging.md)."""
    from msgraph.generated.models.user_collection_response import UserCollectionResponse
    from msgraph_core.tasks.page_iterator import PageIterator

    client = make_client(sandbox, "northwind")
    total = len(sandbox.admin("GET", "tenants/northwind/users")["value"])

    async def run():
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=40, select=["id", "displayName"])
        first = await client.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        seen: list[str] = []

        def keep(user) -> bool:
            seen.append(user.id)
            return True

        assert isinstance(first, UserCollectionResponse) and first.odata_next_link
        it = PageIterator(first, client.request_adapter)
        await it.iterate(keep)
        return seen

    seen = asyncio.run(run())
    assert len(seen) == len(set(seen)) == total


def test_delta_round_with_its_delta_link(sandbox):
    """users/delta through the SDK: pages, then @odata.deltaLink; the next round has only the change."""
    from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

    client = make_client(sandbox, "northwind")
    total = len(sandbox.admin("GET", "tenants/northwind/users")["value"])

    async def run():
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["displayName", "jobTitle"])
        page = await client.users.delta.get(request_configuration=RequestConfiguration(query_parameters=query))
        items = list(page.value)
        while page.odata_next_link:
            page = await client.users.delta.with_url(page.odata_next_link).get()
            items += page.value
        assert page.odata_delta_link and len({u.id for u in items}) == total
        target = items[0].id
        await client.users.by_user_id(target).patch(__import__("msgraph.generated.models.user", fromlist=["User"])
                                                     .User(job_title="Delta via SDK"))
        nxt = await client.users.delta.with_url(page.odata_delta_link).get()
        return target, nxt

    target, nxt = asyncio.run(run())
    assert [u.id for u in nxt.value] == [target] and nxt.value[0].job_title == "Delta via SDK"


def test_batch_with_relative_urls(sandbox):
    """$batch through msgraph_core. The SDK's BatchRequestItem keeps the absolute URL
    (msgraph-sdk-python#1015, msgraph-sdk-python-core#1116), which Graph refuses ("Resource not found
    for the segment"); the workaround given in #1015 strips the base URL from each item."""
    from msgraph_core.requests.batch_request_content import BatchRequestContent
    from msgraph_core.requests.batch_request_item import BatchRequestItem

    client = make_client(sandbox, "northwind")
    uid = sandbox.admin("GET", "tenants/northwind/users")["value"][0]["id"]
    base = sandbox.info["graph_url"]

    async def run():
        content = BatchRequestContent()
        for i, info in enumerate((client.users.by_user_id(uid).to_get_request_information(),
                                  client.users.by_user_id("00000000-0000-0000-0000-000000000000")
                                  .to_get_request_information())):
            item = BatchRequestItem(id=str(i + 1), request_information=info)
            item.url = item.url.replace(base, "")  # the #1015 workaround
            content.add_request(str(i + 1), item)
        return await client.batch.post(batch_request_content=content)

    result = asyncio.run(run())
    statuses = {k: r.status for k, r in result.responses.items()}
    assert statuses == {"1": 200, "2": 404}


def test_deleted_items_through_the_graph_user_cast_and_roles_by_template_id(sandbox):
    """The SDK's deletedItems cast (`graph.user`, the OpenAPI alias) and directoryRoles by roleTemplateId."""
    client = make_client(sandbox, "fabrikam")
    info = sandbox.tenant("fabrikam")

    async def run():
        deleted = await client.directory.deleted_items.graph_user.get()
        role = (await client.directory_roles.get()).value[0]
        by_template = await client.directory_roles_with_role_template_id(role.role_template_id).get()
        app = await client.applications_with_app_id(info["client_id"]).get()
        return deleted, role, by_template, app

    deleted, role, by_template, app = asyncio.run(run())
    assert deleted.value is not None
    assert by_template.id == role.id
    assert app.id == info["app_object_id"]


def test_a_404_maps_to_odata_error(sandbox):
    """A Graph error body ({"error": {"code", "message", "innerError"}}) becomes the SDK's ODataError."""
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    client = make_client(sandbox, "fabrikam")

    async def run():
        with pytest.raises(ODataError) as err:
            await client.users.by_user_id("00000000-0000-0000-0000-000000000000").get()
        return err.value

    exc = asyncio.run(run())
    assert exc.response_status_code == 404 and exc.error.code == "Request_ResourceNotFound"
    assert exc.error.inner_error is not None
