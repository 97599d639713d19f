"""The README's first hour: what a newcomer reads must be there and agree with the repository."""

from __future__ import annotations

import re
import subprocess

import yaml

from harness.provider_server import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    following = re.search(r"^#{1,3} ", README[start + len(title) :], re.MULTILINE)
    return README[start : start + len(title) + (following.start() if following else len(README))]


def test_it_says_which_python_and_virtualenv_and_ci_runs_its_set_up_commands():
    setup = section("## Set-up")
    assert "Python 3.11" in setup and "python3.11 -m venv .venv" in setup
    block = setup.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("  #")[0].strip() for line in block.splitlines()[1:]]  # after the venv line
    ci = (PROJECT_ROOT / ".ci/run").read_text()
    assert "python -m pip install -r requirements-dev.txt" in commands and commands[-1] == "python -m pytest"
    assert all(command in ci for command in commands)


def test_it_says_how_to_install_the_pulumi_cli():
    install = section("### Installing the Pulumi CLI")
    for way in ("curl -fsSL https://get.pulumi.com | sh", "brew install pulumi/tap/pulumi", "pulumi/pulumi-python"):
        assert way in install


def test_it_tours_what_runs_without_the_cli():
    tour = section("### Without the CLI")
    for thing in (
        "python -m pytest",
        "python -m emulator",
        "/_emulator",
        "TokenBudgetEvaluator",
        "python -m bench.run_all",
    ):
        assert thing in tour


def test_it_says_what_listens_at_the_quickstart_webhook_urls():
    stack = yaml.safe_load((PROJECT_ROOT / "Pulumi.local.yaml").read_text())
    relay = yaml.safe_load((PROJECT_ROOT / "alert-relay.local.yaml").read_text())
    receiver = relay["routes"]["search"]["webhook"].removesuffix("/search")
    quickstart = section("## Quickstart with the Pulumi CLI")
    assert stack["config"]["ml-budgets:alertRelay"]["url"] in quickstart
    assert f"{receiver}/<route>`, where nothing\nin the quickstart listens" in quickstart
    assert "alerts are sent by an `mlflow server`" in quickstart


def test_no_file_points_at_a_design_document_the_repository_does_not_have():
    tracked = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    names = tracked.stdout.split()
    if "DESIGN.md" in names:
        return
    mentions = [
        name for name in names if name.endswith((".md", ".py")) and "DESIGN.md" in (PROJECT_ROOT / name).read_text()
    ]
    assert mentions == [] or mentions == ["tests/stack/test_readme.py"]


def test_the_recursion_limit_it_quotes_is_the_one_measured():
    results = (PROJECT_ROOT / "bench/RESULTS.md").read_text()
    measured = re.search(r"(\d+) raise RecursionError", results).group(1)
    quoted = re.findall(r"RecursionError`? at (?:the|about) (\d+)", README)
    assert quoted and set(quoted) == {measured}
    base = (PROJECT_ROOT / "providers/_base.py").read_text()
    assert "485 resources" not in README and "~485" not in base


def test_its_start_up_figures_are_those_of_the_benchmark_results():
    results = (PROJECT_ROOT / "bench/RESULTS.md").read_text()
    rows = re.findall(
        r"^\| (python -c \"import pulumi\"|__main__\.py, 10 teams, under mocks)\s*\|(.+)$", results, re.MULTILINE
    )
    row = next(line for line in README.splitlines() if line.startswith("| Program start-up"))
    for _, cells in rows:
        import_ms, wall_ms = (float(cell) for cell in cells.split("|")[2:4])
        assert f"{round(import_ms)} ms imports" in row and f"{round(wall_ms)} ms wall" in row
