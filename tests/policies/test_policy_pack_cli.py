"""`pulumi preview --policy-pack policies` through the real Pulumi CLI, as a pull-request check sees it.

The stacks are those of ``test_policy_pack.py`` (which drives the same pack over gRPC): the
compliant one passes with exit code 0 and no violation; one grant to a person is one mandatory
violation that fails the preview; configured ``advisory`` it is reported and the preview passes.
The CLI computes the policy config from the pack's schemas and the config file, as in CI.  The CLI
comes from ``harness/pulumi_cli.py`` (the pack runs through our analyzer launcher where the CLI
lacks the Python language host).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from harness.policy_pack import PACK_DIR
from harness.project_copy import copy_project
from harness.pulumi_cli import Events, cli_stack, main_program, policy_pack_argument
from tests.policies.test_policy_pack import CEILINGS, COMPLIANT, VIOLATIONS, variant

PACK = "ml-budgets-guardrails"


def _exit_code(error: Exception) -> int:
    found = re.search(r"code: (-?\d+)", str(error))
    assert found, str(error)[:500]
    return int(found.group(1))


def test_preview_with_the_policy_pack_passes_a_compliant_stack_and_stops_a_violating_one(
    tmp_path, pulumi_cli, databricks_emulator, mlflow_server, policy_pack_python, remove_stacks
):
    from pulumi import automation as auto

    work_dir = copy_project(tmp_path / "project")
    pack_dir = tmp_path / "policies"
    shutil.copytree(PACK_DIR, pack_dir, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    (pack_dir / "venv").symlink_to(policy_pack_python.parent.parent)  # the pack's virtualenv, built once
    pack = policy_pack_argument(pulumi_cli, pack_dir)

    stack = cli_stack(pulumi_cli, tmp_path, work_dir, "policy", main_program(work_dir))
    remove_stacks.append(stack)
    for key, value in {**databricks_emulator.config(), "mlflow:trackingUri": mlflow_server.tracking_uri}.items():
        stack.set_config(key, auto.ConfigValue(value, secret=key == "databricks:token"))

    def preview(config: dict, policy_config: dict) -> tuple[Events, int, str]:
        for key, value in config.items():
            stack.set_config(key, auto.ConfigValue(json.dumps(value)))
        config_file = tmp_path / "policy-config.json"
        config_file.write_text(json.dumps(policy_config))
        events = Events()
        try:
            result = stack.preview(policy_packs=[pack], policy_pack_configs=[str(config_file)], on_event=events)
        except auto.CommandError as error:
            return events, _exit_code(error), str(error)
        assert result.change_summary and set(result.change_summary) == {"create"}
        return events, 0, result.stdout

    def violations(events: Events) -> list[tuple[str, str, str]]:
        assert {v.policy_pack_name for v in events.violations} <= {PACK}
        return [(v.policy_name, v.enforcement_level, v.resource_urn.rsplit("::", 1)[-1]) for v in events.violations]

    events, code, _ = preview(COMPLIANT, CEILINGS)
    assert (code, violations(events)) == (0, [])

    change, policy, message = VIOLATIONS["a user granted use"]
    events, code, output = preview(variant(change), CEILINGS)
    assert violations(events) == [(policy, "mandatory", "recsys-serverless-grants")]
    assert message in events.violations[0].message
    assert code == 1, output[-2000:]
    assert "error: preview failed" in output

    events, code, output = preview(variant(change), {**CEILINGS, policy: "advisory"})
    assert violations(events) == [(policy, "advisory", "recsys-serverless-grants")]
    assert code == 0, output[-2000:]


def test_a_policy_config_that_does_not_fit_the_schema_is_refused_by_the_cli(
    tmp_path, pulumi_cli, databricks_emulator, mlflow_server, policy_pack_python, remove_stacks
):
    from pulumi import automation as auto

    work_dir = copy_project(tmp_path / "project")
    pack_dir = tmp_path / "policies"
    shutil.copytree(PACK_DIR, pack_dir, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    (pack_dir / "venv").symlink_to(policy_pack_python.parent.parent)
    stack = cli_stack(pulumi_cli, tmp_path, work_dir, "policy", main_program(work_dir))
    remove_stacks.append(stack)
    for key, value in {**databricks_emulator.config(), "mlflow:trackingUri": mlflow_server.tracking_uri}.items():
        stack.set_config(key, auto.ConfigValue(value))
    config_file = tmp_path / "policy-config.json"
    config_file.write_text(json.dumps({"gateway-cap-ceilings": {"teamCeilingUsd": -5}}))
    with pytest.raises(auto.CommandError) as refused:
        stack.preview(policy_packs=[policy_pack_argument(pulumi_cli, pack_dir)], policy_pack_configs=[str(config_file)])
    assert "teamCeilingUsd" in str(refused.value)
    assert _exit_code(refused.value) != 0
