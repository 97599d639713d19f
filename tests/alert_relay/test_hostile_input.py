"""The relay under hostile and careless input (issue 23): every answer a 4xx or a bare 500, no
traceback, no secret, no stuck message, and slow clients never hold it up."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler

import pytest
import requests
import yaml

from harness.alert_relay import budget_envelope, signed_post
from harness.local_http import LocalFake
from harness.provider_server import PROJECT_ROOT
from harness.webhook_receiver import mlflow_signature

SECRET = "whsec-search-test-only"
PD_KEY = "R0UT1NGKEY0000000000000000000042"


def search_route(slack_fake, **extra) -> tuple[dict, dict]:
    route = {"secret": "${SEARCH_WEBHOOK_SECRET}", "slack": "${SEARCH_SLACK_WEBHOOK_URL}", **extra}
    env = {"SEARCH_WEBHOOK_SECRET": SECRET, "SEARCH_SLACK_WEBHOOK_URL": slack_fake.url}
    return {"expire_after": "1h", "routes": {"search": route}}, env


def raw_post(url: str, headers: dict[str, str], body: bytes = b"{}") -> requests.Response:
    # As bytes (UTF-8): http.client would refuse to send a value outside latin-1 as text.
    encoded = {name: value.encode() for name, value in headers.items()}
    return requests.post(url, data=body, headers=encoded, timeout=30)


def headers(delivery_id="d-1", timestamp=None, signature="v1,AAAA") -> dict[str, str]:
    return {
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": str(int(time.time())) if timestamp is None else timestamp,
        "X-MLflow-Signature": signature,
    }


HOSTILE_HEADERS = {
    "non-ASCII signature": headers(signature="v1,\u00e9\u00e9"),
    "non-ASCII among several": headers(signature="v1,AAAA v1,\u00ff"),
    "400-digit timestamp": headers(timestamp="1" + "0" * 400),
    "negative timestamp": headers(timestamp="-1"),
    "Arabic-Indic digits": headers(timestamp="\u0661\u0667\u0660\u0660"),
    "underscored timestamp": headers(timestamp="1_700_000_000"),
    "float timestamp": headers(timestamp="1e9"),
    "8,000-character delivery id": headers(delivery_id="x" * 8000),
    "delivery id with a newline escape": headers(delivery_id="d\\n-1"),
    "no headers": {},
    "huge signature": headers(signature="v1," + "A" * 20_000),
}


@pytest.mark.parametrize("case", HOSTILE_HEADERS)
def test_a_request_failing_verification_gets_a_4xx_whatever_its_headers_hold(case, start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    response = raw_post(relay.webhook_url("search", ["bp-1"]), HOSTILE_HEADERS[case])
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in response.text
    assert "Traceback" not in relay.log_tail(400)
    assert relay.health()[0] == 200


def test_unknown_routes_are_answered_like_bad_signatures(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    envelope = budget_envelope("bp-1")
    for case in ({}, {"signature": "v1,AAAA"}, {"timestamp": 1}):
        known = signed_post(relay.webhook_url("search", ["bp-1"]), "wrong-secret", envelope, **case)
        unknown = signed_post(relay.webhook_url("no-such-route", ["bp-1"]), "wrong-secret", envelope, **case)
        assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    # Even with the right secret of another route, an unknown route tells nothing.
    assert signed_post(relay.webhook_url("searcx", ["bp-1"]), SECRET, envelope).status_code == 401
    assert "searcx" not in relay.log_tail(400)


def test_what_is_logged_of_a_request_is_bounded(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    long_id = "y" * 8000
    raw_post(relay.webhook_url("search", ["bp-1"]), headers(delivery_id=long_id))
    raw_post(relay.webhook_url("z" * 4000, ["bp-1"]), headers())
    envelope = budget_envelope("bp-1", window_start="q" * 5000)
    signed_post(relay.webhook_url("search", ["bp-1"]), SECRET, envelope, delivery_id="d-" + "w" * 120)
    log = relay.log_tail(400)
    assert "y" * 200 not in log and "z" * 200 not in log and "q" * 200 not in log
    assert "w" * 120 not in log
    assert max(len(line) for line in log.splitlines()) < 1000


def _open(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_slow_and_large_requests_do_not_hold_up_the_others(start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    stalled = []
    for _ in range(40):  # headers complete, body promised and never sent
        client = _open(relay.url)
        client.sendall(b"POST /mlflow/search HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        stalled.append(client)
    for _ in range(20):  # headers never finished (slowloris)
        client = _open(relay.url)
        client.sendall(b"POST /mlflow/search HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        stalled.append(client)
    try:
        for _ in range(5):
            started = time.monotonic()
            assert requests.get(f"{relay.url}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - started < 1.0
        policy = "bp-" + uuid.uuid4().hex
        started = time.monotonic()
        accepted = signed_post(relay.webhook_url("search", [policy]), SECRET, budget_envelope(policy))
        assert accepted.status_code == 202 and time.monotonic() - started < 1.0

        # A 10 MB body is refused from its Content-Length, before a byte of it is sent.
        big = _open(relay.url)
        big.sendall(b"POST /mlflow/search HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        assert big.recv(64).startswith(b"HTTP/1.1 413")
        big.close()
    finally:
        for client in stalled:
            client.close()


DEAD_ON_ARRIVAL = {
    "window start in year 31 million": {"window_start": 10**18},
    "window start as text": {"window_start": "2026-12-01"},
    "a billion months": {"duration_unit": "MONTHS", "duration_value": 10**9},
    "unknown duration unit": {"duration_unit": "FORTNIGHTS"},
    "amount NaN as text": {"budget_amount": "NaN"},
    "amount NaN": {"budget_amount": float("nan")},
    "spend infinite": {"current_spend": float("inf")},
    "amount 1e308": {"budget_amount": 1e308},
    "amount as a list": {"budget_amount": [1]},
    "target as an object": {"target_value": {"a": 1}},
}


@pytest.mark.parametrize("case", DEAD_ON_ARRIVAL)
def test_an_alert_that_could_never_be_sent_is_refused_and_dead_lettered_at_once(case, start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    policy = "bp-" + uuid.uuid4().hex
    envelope = budget_envelope(policy, **DEAD_ON_ARRIVAL[case])
    body = json.dumps(envelope).encode()  # NaN and Infinity as Python writes them
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    response = raw_post(
        relay.webhook_url("search", [policy]),
        headers(delivery_id, stamp, mlflow_signature(SECRET, delivery_id, stamp, body)),
        body,
    )
    assert response.status_code == 422, response.text
    status, health = relay.health()
    assert health["queue_depth"] == 0 and health["dead_letters"] == 1
    assert health["recent_dead_letters"][0]["route"] == "search"


MALFORMED = {
    "100k-deep JSON": b"[" * 100_000 + b"]" * 100_000,
    "policy id as a list": json.dumps(budget_envelope(["bp-1"])).encode(),
    "policy id as an object": json.dumps(budget_envelope({"id": "bp-1"})).encode(),
    "data as a list": json.dumps({"entity": "budget_policy", "action": "exceeded", "data": [1]}).encode(),
    "not JSON": b"\xff\xfe{",
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_signed_but_malformed_body_gets_a_4xx(case, start_relay, slack_fake):
    config, env = search_route(slack_fake)
    relay = start_relay(config, env)
    body = MALFORMED[case]
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    response = raw_post(
        relay.webhook_url("search", ["bp-1"]),
        headers(delivery_id, stamp, mlflow_signature(SECRET, delivery_id, stamp, body)),
        body,
    )
    assert 400 <= response.status_code < 500, response.text
    assert "Traceback" not in relay.log_tail(400)


def _run_relay(config_text: bytes | str, tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "relay.yaml"
    path.write_bytes(config_text if isinstance(config_text, bytes) else config_text.encode())
    return subprocess.run(
        [sys.executable, "-m", "alert_relay", "--config", str(path), "--port", "0"],
        cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


ENV = {"S": "whsec-x", "SLACK": "https://hooks.slack.com/services/T0/B0/tok"}
ROUTE = "routes:\n  search:\n    secret: ${S}\n    slack: ${SLACK}\n"


def _config_cases(tmp_path) -> dict[str, tuple[bytes | str, dict[str, str], str]]:
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("x")
    return {
        "not UTF-8": (("# caf\xe9\n" + ROUTE).encode("latin-1"), ENV, "not UTF-8"),
        "UTF-16 with a BOM": (ROUTE.encode("utf-16"), ENV, "not UTF-8"),
        "broken IPv6 URL": (ROUTE + "    webhook: http://[::1/x\n", ENV, "routes.search.webhook"),
        "port out of range": (ROUTE + "    webhook: http://h:99999/x\n", ENV, "routes.search.webhook"),
        "queue is a folder": (f"queue: {tmp_path / 'a-folder'}\n" + ROUTE, ENV, "queue: is a folder"),
        "queue under a file": (f"queue: {tmp_path / 'a-file' / 'q.db'}\n" + ROUTE, ENV, "cannot open the queue"),
        "unreachable redis": (f"queue: redis://127.0.0.1:{_free_port()}/0\n" + ROUTE, ENV, "Redis queue"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not UTF-8",
        "UTF-16 with a BOM",
        "broken IPv6 URL",
        "port out of range",
        "queue is a folder",
        "queue under a file",
        "unreachable redis",
    ],
)
def test_an_unusable_config_stops_the_relay_with_one_line(case, tmp_path):
    text, env, expected = _config_cases(tmp_path)[case]
    result = _run_relay(text, tmp_path, env)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_yaml_error_does_not_print_the_line_that_holds_a_secret(tmp_path):
    leaky = "routes:\n  search:\n    secret: ${S}\n    slack: https://hooks.slack.com/services/T/B/LEAKED-TOKEN: [\n"
    result = _run_relay(leaky, tmp_path, ENV)
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "line" in result.stderr
    assert "LEAKED-TOKEN" not in result.stderr and "Traceback" not in result.stderr


class EchoingPagerDuty(LocalFake):
    """Refuses every event with a 400 that quotes the request back, routing key included."""

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = json.dumps({"status": "invalid event", "echo": raw.decode()}).encode()
                self.send_response(400)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format, *args) -> None:
                pass

        return Handler


def test_a_destination_quoting_the_routing_key_back_does_not_put_it_in_logs_or_dead_letters(start_relay, slack_fake):
    echo = EchoingPagerDuty().start()
    try:
        config, env = search_route(slack_fake, pagerduty={"routing_key": "${PD}", "url": echo.url})
        env["PD"] = PD_KEY
        relay = start_relay(config, env)
        policy = "bp-" + uuid.uuid4().hex
        assert signed_post(relay.webhook_url("search", [policy]), SECRET, budget_envelope(policy)).status_code == 202
        deadline = time.monotonic() + 30
        while relay.health()[1]["dead_letters"] < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        status, health = relay.health()
        assert health["dead_letters"] == 1 and "refused: HTTP 400" in health["recent_dead_letters"][0]["reason"]
        assert PD_KEY not in json.dumps(health)
        assert PD_KEY not in relay.log_tail(400)
        with sqlite3.connect(relay.directory / "alert-relay-queue.db") as db:
            stored = " ".join(body for (body,) in db.execute("select body from dead_letter"))
        assert "invalid event" in stored and PD_KEY not in stored
    finally:
        echo.stop()


def test_the_yaml_config_cases_are_valid_yaml_where_they_should_be():
    assert yaml.safe_load(ROUTE)["routes"]["search"]["secret"] == "${S}"


def test_an_unexpected_error_is_a_bare_500_and_one_log_line(tmp_path, caplog):
    """In process: the queue's accept raises something nobody planned for."""
    from alert_relay.app import create_app
    from alert_relay.config import parse_config
    from alert_relay.queue import Outbox
    from alert_relay.store import SqliteStore

    class BrokenStore(SqliteStore):
        def accept(self, delivery_id, messages, now):
            raise RuntimeError("internal detail: /var/lib/alert-relay/queue.db row 42")

    config = parse_config(
        {"routes": {"search": {"secret": "${S}", "webhook": "http://127.0.0.1:9/x"}}}, tmp_path, env={"S": SECRET}
    )
    client = create_app(config, Outbox(config, BrokenStore(tmp_path / "q.db"))).test_client()
    policy = "bp-" + uuid.uuid4().hex
    body = json.dumps(budget_envelope(policy)).encode()
    delivery_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    signed = headers(delivery_id, stamp, mlflow_signature(SECRET, delivery_id, stamp, body))
    response = client.post(f"/mlflow/search?policy={policy}", data=body, headers=signed)
    assert response.status_code == 500 and response.get_json() == {"message": "internal error"}
    assert "internal detail" not in caplog.text and "Traceback" not in caplog.text
    assert "RuntimeError" in caplog.text


def test_config_problems_quote_keys_and_values_only_so_far(tmp_path):
    long_name = "r" * 1000  # YAML keys stop at 1024 characters
    text = f"expire_after: {'9' * 5000}x\nroutes:\n  {long_name}:\n    secret: ${{S}}\n    slack: ${{SLACK}}\n"
    result = _run_relay(text, tmp_path, ENV)
    assert result.returncode == 2 and "expire_after" in result.stderr
    assert "r" * 200 not in result.stderr and "9" * 400 not in result.stderr
