"""Generate what each resource schema (``SCHEMA`` in its module) determines:

* the Resource class at the end of the module (output annotations, a typed ``__init__``),
  between the ``BEGIN`` and ``END`` marker lines;
* the resource's reference table in README.md, between ``<!-- BEGIN schema:<Name> -->`` and
  ``<!-- END schema:<Name> -->``;
* ``stack-config.schema.json``, the JSON Schema of ``Pulumi.<stack>.yaml``, from
  ``stack_config_schema.py``.

``python -m providers.codegen`` rewrites them; ``--check`` exits 1 if any is out of date (CI, and
``tests/providers/test_schema_codegen.py``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import textwrap
from importlib import import_module
from pathlib import Path

from providers.schema import Field, Schema

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
STACK_CONFIG_SCHEMA = ROOT / "stack-config.schema.json"
# Modules whose Resource class and README table come from their SCHEMA.
SCHEMA_MODULES = (
    "providers.serverless_budget_policy",
    "providers.gateway_budget_policy",
    "providers.account_budget",
    "providers.budget_policy_grants",
    "providers.budget_alert_webhook",
    "providers.experiment_tag",
    "providers.experiment_policy_tag",
)

BEGIN = "# --- BEGIN generated from SCHEMA by `python -m providers.codegen`: do not edit by hand ---"
END = "# --- END generated from SCHEMA ---"


def schema_of(module_name: str) -> Schema:
    schema = import_module(module_name).SCHEMA
    assert isinstance(schema, Schema), module_name
    return schema


# --- the Resource class --------------------------------------------------------------------------


def resource_class(schema: Schema) -> str:
    name = schema.resource
    lines = [
        f'class {name}({schema.base}, module="mlbudgets", name="{name}"):',
        '    """' + "\n    ".join(textwrap.wrap(schema.doc, width=100)) + '"""',
        "",
    ]
    lines += [f"    {f.name}: pulumi.Output[{f.annotation}]" for f in schema.outputs]
    lines += ["", "    def __init__(", "        self,", "        resource_name: str,", "        *,"]
    required = [f for f in schema.arguments if f.required]
    optional = [f for f in schema.arguments if not f.required]
    lines += [f"        {f.name}: pulumi.Input[{f.input_annotation or f.annotation}]," for f in required]
    lines += [f"        {f.name}: pulumi.Input[{f.input_annotation or f.annotation}] | None = None," for f in optional]
    lines += ["        opts: pulumi.ResourceOptions | None = None,", "    ) -> None:"]
    lines += ['        """' + _argument_docs(schema.arguments), '        """']
    # A secret input is a Pulumi secret however it is given (a plain string included).
    arguments = ", ".join(f'"{f.name}": ' + (_secret_argument(f) if f.secret else f.name) for f in schema.arguments)
    lines.append(f"        props = SCHEMA.props({{{arguments}}})")
    if schema.secret_outputs:
        lines.append(
            "        opts = pulumi.ResourceOptions.merge("
            f"opts, pulumi.ResourceOptions(additional_secret_outputs={schema.secret_outputs!r}))"
        )
    lines.append(f"        DynamicResource.__init__(self, {name}Provider(), resource_name, props, opts)")
    if schema.after_init:
        lines.append(f"        {schema.after_init}(self, resource_name, props)")
    return "\n".join(lines) + "\n"


def _secret_argument(f: Field) -> str:
    if f.required:
        return f"pulumi.Output.secret({f.name})"
    return f"pulumi.Output.secret({f.name}) if {f.name} is not None else None"


def _argument_docs(arguments: tuple[Field, ...]) -> str:
    lines: list[str] = []
    for f in arguments:
        lines += textwrap.wrap(f":param {f.name}: {f.doc}", width=100, subsequent_indent="    ")
    first, *rest = lines or [""]
    return "\n".join([first, *(f"        {line}" for line in rest)])


def module_text(path: Path, schema: Schema) -> str:
    text = path.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path}: no {BEGIN!r} ... {END!r} block")
    return _formatted(path, text[: start + len(BEGIN)] + "\n\n\n" + resource_class(schema) + text[end:])


def _formatted(path: Path, source: str) -> str:
    """``source`` as ``ruff format`` leaves it (the project's formatter)."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout


# --- the README table ----------------------------------------------------------------------------


def readme_table(schema: Schema) -> str:
    rows = ["| input | | |", "|---|---|---|"]
    for f in schema.arguments:
        rows.append(f"| `{f.name}` | {_default_cell(f)} | {_cell(_described(f))} |")
    rows += ["", "| output | |", "|---|---|"]
    rows += [f"| `{f.name}` | {_cell(_described(f))} |" for f in schema.outputs if not f.is_argument]
    return "\n".join(rows)


def _default_cell(f: Field) -> str:
    if f.required:
        return "required"
    return "none" if f.default is None else f"`{json.dumps(f.default)}`"


def _described(f: Field) -> str:
    notes = []
    if f.is_argument and f.compared:
        notes.append("changing it replaces the resource" if f.replaces else "changes in place")
    if f.secret:
        notes.append("kept a Pulumi secret")
    return "; ".join([f.doc, *notes])


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def readme_text(text: str, schema: Schema) -> str:
    begin, end = f"<!-- BEGIN schema:{schema.resource} -->", f"<!-- END schema:{schema.resource} -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"README.md: no {begin} ... {end} block")
    return pattern.sub(lambda _: f"{begin}\n{readme_table(schema)}\n{end}", text)


# --- all of it -----------------------------------------------------------------------------------


def generated() -> dict[Path, str]:
    """Every generated file's wanted content."""
    files: dict[Path, str] = {}
    readme = README.read_text()
    for module_name in SCHEMA_MODULES:
        schema = schema_of(module_name)
        path = ROOT / (module_name.replace(".", "/") + ".py")
        files[path] = module_text(path, schema)
        readme = readme_text(readme, schema)
    files[README] = readme
    import stack_config_schema

    files[STACK_CONFIG_SCHEMA] = json.dumps(stack_config_schema.json_schema(), indent=2, ensure_ascii=False) + "\n"
    return files


def stale() -> list[Path]:
    return [path for path, text in generated().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m providers.codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"{path.relative_to(ROOT)} is out of date: run python -m providers.codegen", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in generated().items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
