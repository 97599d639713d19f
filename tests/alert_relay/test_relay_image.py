"""The relay's image installs alert_relay/requirements.txt only: the relay must not need more."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from harness.provider_server import PROJECT_ROOT

PROBE = """
import json, sys
import alert_relay.server, alert_relay.consumer, alert_relay.app, alert_relay.store
alert_relay.store.RedisStore("redis://127.0.0.1:9/0")  # imports the client it lists
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))
"""


def test_the_relay_imports_only_what_its_image_installs():
    loaded = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", PROBE],
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            ).stdout
        )
    )
    assert not loaded & {"mlflow", "pulumi", "databricks", "providers", "components"}
    listed = (PROJECT_ROOT / "alert_relay" / "requirements.txt").read_text()
    distributions = {
        re.split(r"[<>=\s]", line)[0].lower() for line in listed.splitlines() if line and not line.startswith("#")
    }
    imports = {"flask": "flask", "waitress": "waitress", "yaml": "pyyaml", "requests": "requests", "redis": "redis"}
    assert {imports[m] for m in loaded & set(imports)} <= distributions
    assert set(imports.values()) <= distributions
