"""CI's dependency check (.ci/check-dependencies, deptry) fails on an import that the requirements
file of its part does not declare, and passes the repository as it is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.project_copy import copy_repository
from harness.provider_server import PROJECT_ROOT


def check_dependencies(root: Path) -> subprocess.CompletedProcess:
    # deptry runs as `python -m deptry` with the python of this virtualenv, as in CI's activated one.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(root / ".ci/check-dependencies")], cwd=root, env=env, capture_output=True, text=True)


def test_the_repository_declares_every_import():
    checked = check_dependencies(PROJECT_ROOT)
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize(
    "path, line, expected",
    [
        # certifi arrives with requests and databricks-sdk: installed, but only transitively.
        ("providers/_base.py", "import certifi", "DEP003 'certifi' imported but it is a transitive dependency"),
        # rich is in requirements-dev.txt only: the stack's own virtualenv would not have it.
        ("components/naming.py", "import rich", "DEP004 'rich' imported but declared as a dev dependency"),
        # pulumi_policy is the policy pack's, not the relay's.
        ("alert_relay/config.py", "import pulumi_policy", "DEP001 'pulumi_policy' imported but missing"),
    ],
)
def test_an_import_its_requirements_file_does_not_declare_fails_the_check(tmp_path, path, line, expected):
    clone = copy_repository(tmp_path)
    module = clone / path
    module.write_text(module.read_text() + f"\n{line}  # noqa: E402, F401\n")
    checked = check_dependencies(clone)
    assert checked.returncode == 1
    assert f"{path}:" in checked.stdout and expected in checked.stdout
