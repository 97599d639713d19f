"""How long a Databricks create takes to fail in the common outages, with default settings (#23).

``python -m bench.databricks_outage [--case silent|gone|closing] [--resource serverless|account]``

* ``silent``: a host that accepts TCP connections and never answers;
* ``gone``: the account emulator answers the first create, then stops (its port refuses);
* ``closing``: a host that answers the SDK's host metadata fetch and closes every API request's
  connection without an answer.

Each case runs the resource's real provider (check, then create) in this process, with the stack
config a user would write (host, account id, token: no timeouts set), and prints the seconds to
the error and its message.  Before #23 these took 639 s (silent, ServerlessBudgetPolicy), 698 s
(silent, AccountBudget) and 303 s (gone).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench.common import emit, machine_context, table
from harness.dead_hosts import ACCOUNT_ID, closing_host, provider_for, silent_host


def timed_create(provider: Any, inputs: dict[str, Any]) -> tuple[float, str]:
    started = time.monotonic()
    try:
        provider.create(inputs)
        message = "(created)"
    except Exception as error:  # noqa: BLE001 (what the user would see)
        message = str(error)
    return time.monotonic() - started, message


def run_case(case: str, resource: str) -> tuple[float, str]:
    if case == "silent":
        with silent_host() as host:
            return timed_create(*provider_for(resource, host))
    if case == "closing":
        with closing_host() as host:
            return timed_create(*provider_for(resource, host))
    from emulator.server import EmulatorServer

    emulator = EmulatorServer(account_id=ACCOUNT_ID).start()
    url = emulator.url
    _, first = timed_create(*provider_for(resource, url, ACCOUNT_ID))
    assert first == "(created)", first
    emulator.stop()
    return timed_create(*provider_for(resource, url, ACCOUNT_ID))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("silent", "gone", "closing"), action="append")
    parser.add_argument("--resource", choices=("serverless", "account"), action="append")
    args = parser.parse_args()
    import databricks.sdk  # noqa: F401 (imported once up front: the import is no part of an outage)

    rows, messages = [], []
    for case in args.case or ("silent", "gone", "closing"):
        for resource in args.resource or ("serverless", "account"):
            seconds, message = run_case(case, resource)
            rows.append((case, resource, round(seconds, 1)))
            messages.append(f"{case}/{resource}: {message}")
    report = "\n".join(
        [
            table(("case", "resource", "seconds to fail"), rows, "Databricks create in an outage, default settings"),
            *messages,
            machine_context(),
        ]
    )
    emit("databricks_outage", report)


if __name__ == "__main__":
    main()
