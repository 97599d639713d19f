"""The real Pulumi CLI for tests: the one on PATH, else the one ``scripts/pulumi-cli.sh`` builds.

Tests skip only where neither exists and the script cannot run (no Go toolchain), and say so.

The script builds the CLI but not the Python language host (the Go module proxy serves no version
of it; see the script). So the stack program runs the way the Automation API runs inline
programs: ``pulumi preview|up|refresh|destroy --client=<address>``, the program served from this
process by the SDK's own language server (``pulumi.automation._server.LanguageServer``). Everything
else is the real CLI and engine: the step generator, the diffs, the state file, the secrets
manager, the dynamic provider plugin (``pulumi-resource-pulumi-python``), policy packs and their
config. With an official CLI install (which has the language host) the same tests run unchanged.

``cli_stack`` makes a stack in a copy of the project (so the CLI never builds the ``venv`` that
Pulumi.yaml names in the repository), logged in to a file backend in a temp folder
(``pulumi login file://…``, the temp-folder form of ``pulumi login --local``), with the
passphrase secrets provider, and its own PULUMI_HOME.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.provider_server import PROJECT_ROOT

CLI_SCRIPT = PROJECT_ROOT / "scripts" / "pulumi-cli.sh"
PASSPHRASE = "ml-budgets-cli-tests"
ANALYZER_LAUNCHER = "pulumi-analyzer-policy-python"


def find_or_build_cli() -> Path:
    """The folder holding ``pulumi`` and the dynamic provider launcher."""
    installed = shutil.which("pulumi")
    if installed and shutil.which("pulumi-resource-pulumi-python"):
        return Path(installed).resolve().parent
    if shutil.which("go") is None:
        pytest.skip(
            "the pulumi CLI is not installed, and scripts/pulumi-cli.sh cannot build it here: Go is not "
            "installed (install the CLI from https://www.pulumi.com/docs/install/, or Go to build it)"
        )
    built = subprocess.run(["bash", str(CLI_SCRIPT)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"scripts/pulumi-cli.sh failed:\n{built.stderr[-3000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def pulumi_cli() -> Path:
    return find_or_build_cli()


def policy_pack_argument(cli_bin: Path, pack_dir: Path) -> str:
    """What to pass to ``--policy-pack``: the pack folder where the CLI has the Python language
    host (it runs packs through it), else our analyzer launcher linked into the pack folder (the
    CLI runs an executable ``--policy-pack`` as the analyzer; PulumiPolicy.yaml is read beside it)."""
    if (cli_bin / "pulumi-language-python").exists() or shutil.which("pulumi-language-python"):
        return str(pack_dir)
    link = pack_dir / ANALYZER_LAUNCHER
    if not link.exists():
        launcher = cli_bin / ANALYZER_LAUNCHER
        if not launcher.exists():
            launcher = Path(built_bin()) / ANALYZER_LAUNCHER
        link.symlink_to(launcher)
    return str(link)


def built_bin() -> str:
    return subprocess.run(["bash", str(CLI_SCRIPT)], capture_output=True, text=True, check=True).stdout.split()[-1]


def main_program(work_dir: Path) -> Callable[[], None]:
    """The project's ``__main__.py`` (from the copy), as the language host would run it."""

    def program() -> None:
        runpy.run_path(str(work_dir / "__main__.py"), run_name="__main__")

    return program


@dataclass
class Events:
    """The engine events of one command: each resource's step, and the policy violations."""

    steps: dict[str, str] = field(default_factory=dict)  # urn → op (create, same, update, …)
    diffs: dict[str, list[str]] = field(default_factory=dict)  # urn → changed properties
    violations: list[Any] = field(default_factory=list)

    def __call__(self, event: Any) -> None:
        if event.resource_pre_event is not None:
            metadata = event.resource_pre_event.metadata
            self.steps[metadata.urn] = str(metadata.op.value if hasattr(metadata.op, "value") else metadata.op)
            self.diffs[metadata.urn] = list(metadata.diffs or [])
        if event.policy_event is not None:
            self.violations.append(event.policy_event)

    def summary(self) -> dict[str, int]:
        return dict(Counter(self.steps.values()))

    def changed(self) -> dict[str, str]:
        return {urn: op for urn, op in self.steps.items() if op != "same"}


def cli_env(cli_bin: Path, tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    backend = tmp_path / "backend"
    backend.mkdir(exist_ok=True)
    return {
        "PATH": f"{cli_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_HOME": str(tmp_path / "pulumi-home"),
        "PULUMI_BACKEND_URL": backend.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The dynamic provider launcher runs this interpreter (where the project's packages are).
        "PULUMI_PYTHON_CMD": sys.executable,
        **(extra or {}),
    }


def login(cli_bin: Path, env: dict[str, str]) -> None:
    """``pulumi login`` to the temp folder's file backend (``--local`` would use ~/.pulumi)."""
    subprocess.run(
        [str(cli_bin / "pulumi"), "login", env["PULUMI_BACKEND_URL"]],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def cli_stack(
    cli_bin: Path,
    tmp_path: Path,
    work_dir: Path,
    stack_name: str,
    program: Callable[[], None],
    env: dict[str, str] | None = None,
) -> Any:
    from pulumi import automation as auto

    environment = cli_env(cli_bin, tmp_path, env)
    login(cli_bin, environment)
    return auto.create_or_select_stack(
        stack_name=stack_name,
        project_name="ml-budgets",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            pulumi_home=environment["PULUMI_HOME"],
            env_vars=environment,
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(cli_bin.parent)),
        ),
    )


def state_file(tmp_path: Path, stack_name: str) -> Path:
    """The stack's checkpoint in the file backend (what `pulumi stack export` reads)."""
    found = list((tmp_path / "backend" / ".pulumi" / "stacks").rglob(f"{stack_name}.json"))
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def remove_stacks() -> Iterator[list[Any]]:
    """Stacks to remove at teardown (after a failed test too)."""
    stacks: list[Any] = []
    yield stacks
    for stack in stacks:
        with contextlib.suppress(Exception):  # best effort: the test's own failure matters more
            stack.workspace.remove_stack(stack.name, force=True)
