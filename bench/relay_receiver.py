"""A JSON receiver in its own process for the relay benchmarks: one line per request it accepts.

``python -m bench.relay_receiver --port N --out FILE``: each POST is answered 200 and appended to
FILE as ``<time.time()> <policy id>``.  Its own process, so the benchmark's client threads
never delay the moment an arrival is recorded.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    lock = threading.Lock()
    out = open(args.out, "a", buffering=1)  # noqa: SIM115 (open for the life of the process)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            arrived = time.time()
            with lock:
                out.write(f"{arrived!r} {body.get('policy_id')}\n")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args) -> None:  # noqa: A002 (http.server naming)
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
