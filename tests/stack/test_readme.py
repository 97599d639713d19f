"""The README's code blocks, executed.

Every ```python and ```bash block runs here, or carries a ``<!-- not run: <why> -->`` comment
right before it in the README source. Python blocks run in order, as one Pulumi program, through
the SDK's real provider server: every resource they declare passes the providers' Check (what
`pulumi preview` runs). The quickstart's commands run as written, each in the environment the
README has set up to that line and nothing else; its ``pulumi`` commands go through
``harness/engine.py``, and its ``pulumi preview`` also through the real CLI where there is one
(``harness/pulumi_cli.py``). YAML and JSON blocks are parsed by the code that reads them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
import requests
import yaml

from alert_relay.config import parse_config
from harness.engine import LocalEngine
from harness.mlflow_server import free_port, provider_env
from harness.project_copy import copy_repository
from harness.provider_server import PROJECT_ROOT, ProviderServer

README = (PROJECT_ROOT / "README.md").read_text()
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.+?)\s*-->\s*$", re.DOTALL)
# What a user's shell has before the README adds anything: the machine's, not the project's (and
# their own PYTHONPATH, if any: a run with the clock moved ahead puts its sitecustomize there).
SHELL_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence
    lang: str
    code: str
    section: str  # the nearest heading above it
    not_run: str | None  # the reason given in <!-- not run: ... -->


def readme_blocks(text: str = README) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        elif line.startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = "\n".join(lines[max(0, i - 6) : i])
            reason = NOT_RUN.search(before)
            code = "\n".join(lines[i + 1 : end]) + "\n"
            blocks.append(Block(i + 1, line[3:].strip(), code, section, reason.group(1) if reason else None))
            i = end
        i += 1
    return blocks


BLOCKS = readme_blocks()


def blocks(lang: str, run: bool | None = None, section: str = "") -> list[Block]:
    return [
        b for b in BLOCKS if b.lang == lang and section in b.section and (run is None or (b.not_run is None) == run)
    ]


def test_the_parser_sees_a_marker_only_right_before_a_block():
    text = "## A\n<!-- not run: needs the CLI -->\n```bash\npulumi up\n```\n\n```python\nx = 1\n```\n"
    first, second = readme_blocks(text)
    assert (first.not_run, first.section, first.code) == ("needs the CLI", "A", "pulumi up\n")
    assert second.not_run is None and second.lang == "python"


def test_every_bash_block_but_the_quickstart_says_why_it_is_not_run():
    assert [b.section for b in blocks("bash", run=True)] == ["Quickstart with the Pulumi CLI"]
    assert all(len(b.not_run or "") > 20 for b in blocks("bash", run=False)), "say why, in words"


def test_the_set_up_and_checks_blocks_are_what_ci_runs():
    """Not run here (they install, and run this suite): CI runs them, so they must be CI's commands."""
    ci = (PROJECT_ROOT / ".ci/run").read_text()
    for section in ("Set-up", "Checks"):
        (block,) = blocks("bash", section=section)
        commands = [line.split("#")[0].strip() for line in block.code.splitlines() if line.split("#")[0].strip()]
        missing = [c for c in commands if not any(part.strip() in ci for part in c.split("&&"))]
        assert missing == [], f"{section}: not in .ci/run"


def test_the_set_up_installs_every_system_package_ci_installs():
    """A reader who follows the set-up gets every server the tests start (CI's apt-get line)."""

    def apt_packages(text: str) -> set[str]:
        lines = [line.split("#")[0] for line in text.splitlines() if "apt-get install" in line]
        return {word for line in lines for word in line.split("apt-get install", 1)[1].split() if word != "-y"}

    (set_up,) = blocks("bash", section="Set-up")
    assert apt_packages((PROJECT_ROOT / ".ci/run").read_text()) <= apt_packages(set_up.code)


# ---- python blocks: one program, every resource through the real Check --------------------


def declared_names(code: str) -> set[str]:
    """The Pulumi names the block gives its resources and components (their first argument)."""
    return set(re.findall(r"\b[A-Z]\w*\(\s*\"([a-z0-9][a-z0-9-]*)\"", code))


def test_every_python_block_runs_and_its_resources_pass_check(databricks_emulator, tmp_path):
    program_blocks = blocks("python", run=True)
    assert len(program_blocks) >= 5
    # The Resources section's own words: "import them as `from providers import ...`".
    imports = re.search(r"import them\s+as `(from providers import [^`]+)`", README)
    assert imports is not None
    import_line = " ".join(imports.group(1).split())
    secrets = sorted({name for b in program_blocks for name in re.findall(r"require_secret\(\"(\w+)\"\)", b.code)})

    def program() -> None:
        namespace: dict = {"__name__": "__main__"}
        exec(import_line, namespace)
        for block in program_blocks:
            exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)

    provider_config = {**databricks_emulator.config(), "mlflow:trackingUri": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with ProviderServer(config=provider_config, env=provider_env()) as server:
        engine = LocalEngine(server, program=program)
        config = {f"ml-budgets:{name}": "readme-test-signing-secret" for name in secrets}
        preview = engine.preview({**provider_config, **config}, secret_keys=list(config))
    checked = {name for (_, name), _ in engine.checked}
    declared = set().union(*(declared_names(b.code) for b in program_blocks))
    assert declared and all(any(c == d or c.startswith(f"{d}-") for c in checked) for d in declared), declared - checked
    assert set(preview.summary()) == {"create"}
    assert databricks_emulator.count("POST", "") == 0  # a preview writes nothing


def test_the_stack_config_example_passes_the_config_checks_and_every_resource_check(databricks_emulator, tmp_path):
    (block,) = blocks("yaml", section="Stack config")
    config = yaml.safe_load(block.code)["config"]
    provider_config = {**databricks_emulator.config(), "mlflow:trackingUri": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    with ProviderServer(config=provider_config, env=provider_env()) as server:
        engine = LocalEngine(server)
        preview = engine.preview({**provider_config, **config})
    assert preview.count("create") > 10 and set(preview.summary()) == {"create"}
    assert set(preview.exports["teams"]) == {"search"}


def test_the_relay_config_example_starts_a_relay(tmp_path):
    (block,) = blocks("yaml", section="Run it")
    raw = yaml.safe_load(block.code)
    raw["queue"] = str(tmp_path / "queue.db")  # the example's /var/lib/… is the image's volume
    names = set(re.findall(r"\$\{(\w+)\}", block.code))
    env = {name: "https://hooks.slack.com/services/T/B/x" if name.endswith("_URL") else "k" * 32 for name in names}
    relay = parse_config(raw, tmp_path, env=env)
    assert relay.routes["search"].destinations() == ["slack", "pagerduty", "alertmanager", "webhook"]


def test_the_policy_pack_config_shown_is_the_shipped_one():
    (block,) = blocks("json", section="policy pack")
    assert json.loads(block.code) == json.loads((PROJECT_ROOT / "policies/config.prod.json").read_text())


# ---- the quickstart, as written --------------------------------------------------------------


def shell_commands(code: str) -> list[list[str]]:
    """Each command of a bash block as words: continuations joined, comments dropped."""
    return [words for line in code.replace("\\\n", " ").splitlines() if (words := shlex.split(line, comments=True))]


def assignments(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """``A=1 B=2 cmd …`` → ({A: 1, B: 2}, [cmd, …])."""
    env: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
        name, _, value = words[0].partition("=")
        env[name] = value
        words = words[1:]
    return env, words


def replace_option(words: list[str], option: str, value: str) -> list[str]:
    i = words.index(option)
    return [*words[: i + 1], value, *words[i + 2 :]]


def wait_until_answering(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            requests.get(url, timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"nothing answered at {url}")


class Quickstart:
    """The quickstart's shell: its variables, its background jobs, its pulumi stack."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.env = {name: os.environ[name] for name in os.environ if name in SHELL_VARIABLES}
        self.jobs: list[subprocess.Popen] = []
        self.servers: list[ProviderServer] = []
        self.engine: LocalEngine | None = None
        self.config: dict = {}
        self.emulator_url = ""
        self.outputs: dict = {}
        self.cli_bin: Path | None = None  # the real CLI, where there is one, for `pulumi preview`

    def run(self, words: list[str]) -> None:
        scoped, words = assignments(words)
        background = words[-1] == "&"
        words = words[:-1] if background else words
        if words[0] == "export":
            self.env.update(assignments(words[1:])[0])
        elif words[0] == "pulumi":
            self.pulumi(words[1:])
        elif words[:3] == ["python", "-m", "emulator"]:
            port = free_port()
            self.emulator_url = f"http://127.0.0.1:{port}"
            self.start(replace_option(words, "--port", str(port)), scoped, f"{self.emulator_url}/_emulator")
        elif words[:3] == ["python", "-m", "alert_relay"]:
            port = free_port()
            relay = self.start(replace_option(words, "--port", str(port)), scoped, f"http://127.0.0.1:{port}/healthz")
            assert relay.poll() is None
        else:
            raise AssertionError(f"the quickstart test does not know how to run {words}")
        assert background == (words[0] == "python"), f"{words}: servers run in the background, the rest not"

    def start(self, words: list[str], scoped: dict[str, str], url: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, *words[1:]],
            cwd=self.work_dir,
            env={**self.env, **scoped},
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.jobs.append(process)
        wait_until_answering(url, process)
        return process

    def pulumi(self, args: list[str]) -> None:
        if args == ["login", "--local"]:
            return
        if args[:2] == ["stack", "init"]:
            stack = yaml.safe_load((self.work_dir / f"Pulumi.{args[2]}.yaml").read_text())["config"]
            assert stack["databricks:host"] == "http://127.0.0.1:8484"  # where the README starts it
            self.config = {**stack, "databricks:host": self.emulator_url}
            assert "PULUMI_CONFIG_PASSPHRASE" in self.env, "a local backend's stack needs the passphrase"
            return
        provider_config = {k: v for k, v in self.config.items() if not k.startswith("ml-budgets:")}
        server = ProviderServer(provider_config, env=self.env, project_dir=self.work_dir, inherit_env=False)
        self.servers.append(server)
        engine = self.engine = self.engine or LocalEngine(server)
        engine.server = server
        if args == ["preview"]:
            preview = engine.preview(self.config)
            assert set(preview.summary()) == {"create"} and preview.count("create") == 17, preview.summary()
            if self.cli_bin is not None:
                self.cli_preview()
        elif args == ["up"]:
            up = engine.up(self.config)
            assert up.count("create") == 17, up.summary()
            self.outputs = up.exports
        elif args[:2] == ["stack", "output"]:
            assert set(self.outputs[args[2]]) == {"search", "recsys"}
        elif args == ["destroy"]:
            assert engine.destroy().count("delete") == 17
        else:
            raise AssertionError(f"the quickstart test does not know `pulumi {' '.join(args)}`")

    def cli_preview(self) -> None:
        """`pulumi preview` by the real CLI (harness/pulumi_cli.py: an inline program, as it has no
        Python language host), with this shell's environment and nothing else."""
        from pulumi import automation as auto

        from harness.pulumi_cli import Events, cli_stack, main_program

        assert self.cli_bin is not None
        project = yaml.safe_load((self.work_dir / "Pulumi.yaml").read_text())
        project["runtime"] = "python"  # the CLI's language host would build venv/: this interpreter has it all
        (self.work_dir / "Pulumi.yaml").write_text(yaml.safe_dump(project))
        with mock.patch.dict(os.environ, self.env, clear=True):
            stack = cli_stack(self.cli_bin, self.work_dir.parent, self.work_dir, "local", main_program(self.work_dir))
            try:
                stack.set_config("databricks:host", auto.ConfigValue(self.emulator_url))
                events = Events()
                preview = stack.preview(on_event=events)
            finally:
                stack.workspace.remove_stack("local", force=True)
        assert set(preview.change_summary) == {"create"}, preview.change_summary
        dynamic = [urn for urn in events.steps if "pulumi-python:dynamic/" in urn]
        assert len(dynamic) == 17 and {events.steps[urn] for urn in dynamic} == {"create"}, events.steps

    def stop(self) -> None:
        for server in self.servers:
            server.close()
        for job in self.jobs:
            os.killpg(job.pid, 9)
            job.wait(timeout=10)


def pulumi_cli_or_none() -> Path | None:
    from harness.pulumi_cli import find_or_build_cli

    try:
        return find_or_build_cli()
    except pytest.skip.Exception:  # no CLI and no Go: the engine alone takes the pulumi commands
        return None


@pytest.mark.slow
def test_the_quickstart_runs_as_written_with_only_the_environment_it_sets(tmp_path):
    (block,) = blocks("bash", run=True, section="Quickstart")
    shell = Quickstart(copy_repository(tmp_path / "clone"))
    shell.cli_bin = pulumi_cli_or_none()
    try:
        for words in shell_commands(block.code):
            shell.run(words)
    finally:
        shell.stop()
    assert shell.engine is not None and shell.engine.state == {}
    assert (tmp_path / "clone/mlflow-local.db").exists() and (tmp_path / "clone/.emulator-state.json").exists()


# ---- facts the README quotes from the benchmark results ----------------------------------------


def test_the_recursion_limit_it_quotes_is_the_one_measured():
    results = (PROJECT_ROOT / "bench/RESULTS.md").read_text()
    measured = re.search(r"(\d+) raise RecursionError", results).group(1)
    quoted = re.findall(r"RecursionError`? at (?:the|about) (\d+)", README)
    assert quoted and set(quoted) == {measured}


def test_its_start_up_figures_are_those_of_the_benchmark_results():
    results = (PROJECT_ROOT / "bench/RESULTS.md").read_text()
    rows = re.findall(
        r"^\| (python -c \"import pulumi\"|__main__\.py, 10 teams, under mocks)\s*\|(.+)$", results, re.MULTILINE
    )
    row = next(line for line in README.splitlines() if line.startswith("| Program start-up"))
    for _, cells in rows:
        import_ms, wall_ms = (float(cell) for cell in cells.split("|")[2:4])
        assert f"{round(import_ms)} ms imports" in row and f"{round(wall_ms)} ms wall" in row
