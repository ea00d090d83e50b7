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
