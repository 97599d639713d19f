"""Credentials a tracking URI carries by meaning, not by parameter name (issue 23): an ODBC
connection string's PWD inside ``odbc_connect=``, a nested URI's user info.  Neither reaches the
recorded ``tracking_uri`` (state) nor an error message."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from harness.deployment import declare
from harness.mlflow_server import provider_env
from harness.provider_server import ProviderError
from providers import ExperimentTag

SECRET = "S3cr3t-odbc-pw"
CONNECTION = f"DRIVER={{ODBC Driver 18 for SQL Server}};SERVER=127.0.0.1,9;DATABASE=mlflow;UID=sa;PWD={SECRET}"
URIS = [
    f"mssql+pyodbc:///?odbc_connect={quote(CONNECTION, safe='')}",
    f"mssql+pyodbc:///?odbc_connect={quote(CONNECTION.replace('PWD', 'Password'), safe='')}",
    f"postgresql:///mlflow?service={quote(f'postgresql://u:{SECRET}@127.0.0.1:9/x', safe='')}",
]


@pytest.mark.parametrize("uri", URIS)
def test_a_credential_inside_a_parameter_is_kept_out_of_state_and_errors(uri, provider_server_factory):
    server = provider_server_factory(config={"mlflow:trackingUri": uri}, env=provider_env())
    urn = server.urn("pulumi-python:dynamic/mlbudgets:ExperimentTag", "t")
    checked = server.check(urn, declare(ExperimentTag, "t", experiment="0", key="team", value="search"))
    recorded = checked.inputs["tracking_uri"]
    assert SECRET not in recorded and quote(SECRET, safe="") not in recorded
    assert recorded.startswith(uri.split("?")[0])
    with pytest.raises(ProviderError) as failed:  # nothing listens there: the create fails
        server.create(urn, checked.inputs)
    assert SECRET not in failed.value.message and quote(SECRET, safe="") not in failed.value.message
