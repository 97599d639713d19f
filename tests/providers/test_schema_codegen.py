"""What the resource schemas generate (Resource classes, README tables, the stack config's JSON
Schema) is checked in as generated: a schema edit without ``python -m providers.codegen`` fails."""

from __future__ import annotations

import subprocess
import sys

from providers import codegen
from providers.schema import Field, Schema


def test_generated_files_match_the_schemas():
    assert codegen.stale() == []


def test_the_check_command_reports_a_stale_file(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(codegen.README.read_text().replace("| `policy_name` | required |", "| `policy_name` | x |"))
    monkeypatch.setattr(codegen, "README", readme)
    assert readme in codegen.stale()


def test_the_command_line_check_passes_on_the_checked_in_tree():
    done = subprocess.run([sys.executable, "-m", "providers.codegen", "--check"], cwd=codegen.ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr


def test_a_schema_declares_each_field_once_and_derives_its_lists():
    schema = Schema(
        "Thing",
        "a thing",
        [
            Field("name", "str", "its name", required=True),
            Field("size_usd", "float", "its size", default=1.0),
            Field("region", "str", "where", replaces=True, default="eu"),
            Field("declared_at", "str", "where declared", compared=False, echoed=False),
            Field("token", "str", "a secret", secret=True),
            Field("thing_id", "str", "its id", output=True),
        ],
    )
    assert schema.in_place == ("name", "size_usd", "token")
    assert schema.replacing == ("region",)
    assert schema.secret_outputs == ["token"]
    assert [f.name for f in schema.arguments] == ["name", "size_usd", "region", "declared_at", "token"]
    assert schema.props({"name": "a"}) == {
        "name": "a",
        "size_usd": 1.0,
        "region": "eu",
        "declared_at": None,
        "token": None,
        "thing_id": None,
    }
    # State written before size_usd existed diffs as unchanged; a new region replaces.
    olds = {"name": "a", "region": "eu", "token": None, "thing_id": "t-1"}
    assert not schema.diff(olds, schema.check({"name": "a"})[0]).changes
    moved = schema.diff(olds, schema.check({"name": "a", "region": "us"})[0])
    assert moved.changes and moved.replaces == ["region"]
    try:
        Schema("Twice", "", [Field("a", "str", ""), Field("a", "int", "")])
    except ValueError as error:
        assert "a" in str(error)
    else:
        raise AssertionError("a field declared twice must be refused")
