"""A Databricks error quoting a credential back (a proxy echoing the request's Authorization
header, a server naming the token it refused) reaches the user masked, as MLflow's errors do."""

from __future__ import annotations

import pytest

from harness.provider_server import ProviderError
from providers import ServerlessBudgetPolicy

TYPE = "pulumi-python:dynamic/mlbudgets:ServerlessBudgetPolicy"


@pytest.mark.parametrize(
    "echo",
    [
        "proxy refused the request (Authorization: Bearer {token})",
        "invalid token {token} for this account",
        'upstream answered {{"headers": {{"authorization": "Bearer {token}"}}}}',
    ],
)
def test_a_credential_quoted_in_a_databricks_error_is_masked(databricks_emulator, provider_server_factory, echo):
    from harness.deployment import declare

    config = databricks_emulator.config()
    token = config["databricks:token"]
    server = provider_server_factory(config=config)
    databricks_emulator.faults.error(
        "POST", "/budget-policies", status=400, error_code="INVALID_PARAMETER_VALUE", message=echo.format(token=token)
    )
    with pytest.raises(ProviderError) as failed:
        server.apply(server.urn(TYPE, "masked"), declare(ServerlessBudgetPolicy, "masked", policy_name="masked"))
    message = failed.value.message
    assert "Unable to create budget policy 'masked'" in message
    assert token not in message and token.removeprefix("dapi-") not in message
    assert "***" in message
