"""``python -m emulator --port N --state FILE [--host 127.0.0.1]``: serve the account emulator.

The first stdout line is one JSON object, e.g.
``{"url": "http://127.0.0.1:8123", "port": 8123, "account_id": "...", "state": "/tmp/s.json"}``,
printed once the socket listens (so a parent can pass ``--port 0`` and read the port).
SIGTERM / SIGINT stop it; every mutation is already on disk, so nothing is lost.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from emulator.app import EmulatorApp
from emulator.faults import FaultInjector
from emulator.permissions import CALLER, DEFAULT_PRINCIPAL, Permissions
from emulator.server import serve
from emulator.state import AccountState


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="Databricks account API emulator")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (0 = any free port; see the first stdout line)"
    )
    parser.add_argument(
        "--state", default=None, help="JSON file holding the account; loaded if present, written on every change"
    )
    parser.add_argument(
        "--account-id", default=None, help="account id to serve (default: the state file's, else a random UUID)"
    )
    parser.add_argument(
        "--creator-manager",
        default=CALLER,
        metavar="PRINCIPAL",
        help="who gets Manager on every new policy: 'caller' (default: the creating token's principal, as in "
        "Databricks), a principal such as users/admin@example.com, or 'none'",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=PRINCIPAL",
        help="the principal a bearer token belongs to (repeatable; other tokens: users/emulator-user@example.com)",
    )
    parser.add_argument(
        "--billing-admin",
        action="append",
        default=None,
        metavar="PRINCIPAL",
        help="a principal with the billing admin role (repeatable; default: users/emulator-user@example.com)",
    )
    parser.add_argument("--fsync", action="store_true", help="fsync the state file on every write")
    parser.add_argument("--fault-seed", type=int, default=None, help="seed for probabilistic faults")
    args = parser.parse_args(argv)

    try:
        tokens = dict(item.split("=", 1) for item in args.token)
        admins = set(args.billing_admin) if args.billing_admin is not None else {DEFAULT_PRINCIPAL}
        creator = None if args.creator_manager == "none" else args.creator_manager
        state = AccountState(
            args.account_id,
            path=args.state,
            creator_manager=creator,
            fsync=args.fsync,
            permissions=Permissions(tokens=tokens, billing_admins=admins),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = EmulatorApp(state, FaultInjector(seed=args.fault_seed))
    server = serve(app, args.host, args.port)

    def _stop(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        json.dumps(
            {
                "url": f"http://{host}:{server.server_port}",
                "port": server.server_port,
                "account_id": state.account_id,
                "state": args.state,
            }
        ),
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)  # returns on KeyboardInterrupt (SIGINT/SIGTERM)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
