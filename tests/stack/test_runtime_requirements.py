"""requirements.txt is what `pulumi up` needs, and no more: the CLI builds every stack's
virtualenv from it.  Tests, benchmarks and the evaluation guard add requirements-dev.txt.

The providers run here in a provider server that cannot import any installed package outside the
closure of requirements.txt, so a runtime import missing from it fails this test.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import textwrap

import pytest
from packaging.requirements import Requirement

from harness.deployment import Deployment
from harness.mlflow_server import provider_env
from harness.provider_server import PROJECT_ROOT
from providers import BudgetAlertWebhook, ExperimentPolicyTag, GatewayBudgetPolicy, ServerlessBudgetPolicy

MAX_RUNTIME_MEGABYTES = 300  # measured: 181 MB (mlflow-skinny & co.); with full mlflow 897 MB


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


INSTALLED = {normalized(d.metadata["Name"]): d for d in importlib.metadata.distributions()}


def runtime_requirements() -> list[str]:
    lines = (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
    return [Requirement(line.split("#")[0]).name for line in lines if line.split("#")[0].strip()]


def closure(names: list[str]) -> set[str]:
    """Installed distributions these requirements pull in (markers evaluated, no extras)."""
    seen: set[str] = set()
    stack = [normalized(name) for name in names]
    while stack:
        name = stack.pop()
        if name in seen or name not in INSTALLED:
            continue
        seen.add(name)
        for text in INSTALLED[name].requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                stack.append(normalized(requirement.name))
    return seen


def installed_megabytes(names: set[str]) -> float:
    total = 0
    for name in names:
        for file in INSTALLED[name].files or []:
            path = file.locate()
            total += path.stat().st_size if path.is_file() else 0
    return total / 1e6


def top_level_modules(distribution) -> set[str]:
    listed = distribution.read_text("top_level.txt")
    if listed:
        return set(listed.split())
    roots = {str(file).split("/")[0] for file in distribution.files or []}
    return {root.removesuffix(".py") for root in roots if not root.endswith((".dist-info", ".data", ".pth"))}


def test_every_runtime_requirement_is_installed():
    assert set(map(normalized, runtime_requirements())) <= set(INSTALLED)


def test_the_runtime_environment_is_a_fraction_of_the_development_one():
    runtime = installed_megabytes(closure(runtime_requirements()))
    assert runtime < MAX_RUNTIME_MEGABYTES, f"requirements.txt installs {runtime:.0f} MB"
    assert "mlflow" not in closure(runtime_requirements()), "full mlflow is a development requirement"


def write_runtime_only_sitecustomize(directory) -> None:
    """A sitecustomize.py that lets a process import only what requirements.txt installs."""
    runtime = closure(runtime_requirements())
    allowed = set().union(*(top_level_modules(INSTALLED[name]) for name in runtime))
    others = set().union(*(top_level_modules(d) for name, d in INSTALLED.items() if name not in runtime))
    (directory / "sitecustomize.py").write_text(
        textwrap.dedent(f"""
        import sys

        class OnlyRuntimeRequirements:
            blocked = {sorted(others - allowed)!r}

            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in self.blocked:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (not in requirements.txt)", name=name)

        sys.meta_path.insert(0, OnlyRuntimeRequirements())
    """)
    )


@pytest.fixture
def runtime_only_provider(tmp_path, provider_server_factory, sqlite_tracking_uri, databricks_emulator):
    """A provider server that can import only what requirements.txt installs."""
    write_runtime_only_sitecustomize(tmp_path)
    config = {"mlflow:trackingUri": sqlite_tracking_uri, **databricks_emulator.config()}
    env = {**provider_env(), "PYTHONPATH": f"{tmp_path}:{PROJECT_ROOT}"}
    return provider_server_factory(config=config, env=env)


def test_the_providers_run_on_the_runtime_requirements_alone(runtime_only_provider):
    for resource_class, kwargs in (
        (ServerlessBudgetPolicy, dict(policy_name="runtime-only", custom_tags={"team": "t"})),
        (GatewayBudgetPolicy, dict(amount_usd=5, window="daily", action="ALERT")),
        (BudgetAlertWebhook, dict(webhook_name="runtime-only", url="http://127.0.0.1:9/h", secret="whsec-1")),
        (ExperimentPolicyTag, dict(experiment="0", policy_id="p-1")),
    ):
        deployment = Deployment(runtime_only_provider, resource_class)
        deployment.up(**kwargs)
        assert deployment.refresh().id
        deployment.destroy()


def test_the_ci_test_job_installs_the_pulumi_cli_and_the_test_requirements():
    import yaml

    workflow = yaml.safe_load((PROJECT_ROOT / ".github/workflows/preview.yml").read_text())
    steps = workflow["jobs"]["test"]["steps"]
    runs = [step.get("run", "") for step in steps]
    cli = [i for i, step in enumerate(steps) if step.get("uses", "").startswith("pulumi/actions@")]
    tests = next(i for i, run in enumerate(runs) if "pytest" in run)
    assert cli and cli[0] < tests and "command" not in steps[cli[0]].get("with", {}), "CLI installed before the tests"
    assert any("-r requirements-dev.txt" in run for run in runs[:tests])
    assert "-r requirements-dev.txt" in (PROJECT_ROOT / ".ci/run").read_text()


def test_the_program_imports_on_the_runtime_requirements_alone(tmp_path):
    write_runtime_only_sitecustomize(tmp_path)
    program_modules = "import stack_config, components, providers, contracts; import pandas"
    env = {"PYTHONPATH": f"{tmp_path}:{PROJECT_ROOT}", "PATH": "/usr/bin:/bin"}
    blocked = subprocess.run(
        [sys.executable, "-c", program_modules], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True
    )
    assert "No module named 'pandas' (not in requirements.txt)" in blocked.stderr, "the blocker works"
    imported = subprocess.run(
        [sys.executable, "-c", program_modules.removesuffix("; import pandas")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert imported.returncode == 0, imported.stderr[-2000:]
