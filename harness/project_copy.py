"""A copy of the Pulumi project (what `pulumi up` needs to run the program) in a scratch folder,
for tests that drive the real CLI through the Automation API; or of the whole repository, as a
fresh clone has it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from harness.provider_server import PROJECT_ROOT

# Everything the program imports, and the project file: keep in step with the imports of
# __main__.py (a test runs the copied program under set_mocks to prove nothing is missing).
PROGRAM_FOLDERS = ("providers", "components")
PROGRAM_FILES = (
    "__main__.py",
    "stack_config.py",
    "stack_config_schema.py",
    "contracts.py",
    "Pulumi.yaml",
    "requirements.txt",
)


def copy_project(work_dir: Path, extra_files: tuple[str, ...] = ()) -> Path:
    """Copy the project into ``work_dir``, run by this interpreter (no new virtualenv)."""
    for folder in PROGRAM_FOLDERS:
        shutil.copytree(PROJECT_ROOT / folder, work_dir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in (*PROGRAM_FILES, *extra_files):
        shutil.copy(PROJECT_ROOT / name, work_dir / name)
    project = yaml.safe_load((work_dir / "Pulumi.yaml").read_text())
    project["runtime"] = "python"  # use this interpreter and its packages, not a new virtualenv
    (work_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    return work_dir


def copy_repository(target: Path) -> Path:
    """The files a fresh clone has (tracked, plus new ones not yet committed), nothing else."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in listed:
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
