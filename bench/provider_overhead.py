"""(1) Overhead per provider operation: through the provider server vs the same call made directly.

For each resource kind and each operation (create, read, update, delete) three variants run
interleaved (their order rotates every iteration, to cancel drift), each on its own resources:

* provider    the SDK's real provider server (``python -m pulumi.dynamic``) over gRPC; the request
              is built before the clock starts, so the timed region is what the engine waits for:
              gRPC, the server's (de)serialization, provider-side work and the provider's API calls;
* in-process  the same provider object called in this process (no gRPC): provider-side work and
              API calls only, to split the overhead between "server" and "provider logic";
* direct      the minimal correct equivalent with the same client library and a long-lived client.

Databricks kinds run against the account emulator (its own process), MLflow kinds against a
real ``mlflow server`` (and, with ``--mlflow sqlite`` or ``both``, a ``sqlite:///`` store).
The API requests one operation makes are counted by the servers themselves.

    python -m bench.provider_overhead [--repeat 40] [--warmup 5] [--mlflow server|sqlite|both]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    Progress,
    Stopwatch,
    databricks_emulator,
    emit,
    machine_context,
    median,
    mlflow_server,
    p90,
    provider_server,
    ratio,
    table,
    use_provider_env,
)

OPERATIONS = ("create", "read", "update", "delete")
VARIANTS = ("provider", "in-process", "direct")
TARGET_RATIO = 1.2
PROJECT = "ml-budgets"


# --- request counting on the servers ---------------------------------------------------------


class EmulatorCounter:
    """API requests the Databricks emulator received (its own request log)."""

    def __init__(self, emulator) -> None:
        self.control = emulator.control

    def start(self) -> None:
        self.control.reset_requests()

    def count(self) -> int:
        return len(self.control.requests)


class MlflowCounter:
    """Requests the MLflow server answered (its access log)."""

    def __init__(self, server) -> None:
        self.server = server
        self._mark = 0

    def start(self) -> None:
        self._mark = self.server.mark()

    def count(self) -> int:
        time.sleep(0.05)  # uvicorn logs the access line just after the response is sent
        return len(self.server.requests(self._mark))


class NoCounter:
    def start(self) -> None:
        pass

    def count(self) -> int | None:
        return None


# --- the three ways of doing one operation ---------------------------------------------------


class GrpcVariant:
    """The provider behind the SDK's provider server; requests are prebuilt outside the clock.

    Each operation returns the call to time; the call returns (response, decode) so that decoding
    the response, which the engine does in Go, happens after the clock stops.
    """

    def __init__(self, server, type_token: str) -> None:
        from pulumi.runtime.proto import provider_pb2

        self.server, self.pb = server, provider_pb2
        self.type_token = type_token

    def prepare(self, name: str, news: dict) -> dict:
        checked = self.server.check(self.server.urn(self.type_token, name), news)
        assert not checked.failures, checked.failures
        return checked.inputs

    def create(self, name: str, inputs: dict) -> Callable[[], tuple[str, dict]]:
        request = self.pb.CreateRequest(urn=self._urn(name), properties=_struct(inputs))

        def call():
            response = self.server.stub.Create(request, timeout=600)
            return response, lambda: (response.id, _plain(response.properties))

        return call

    def read(self, name: str, id_: str, outputs: dict, inputs: dict):
        request = self.pb.ReadRequest(id=id_, urn=self._urn(name), properties=_struct(outputs), inputs=_struct(inputs))
        return lambda: (self.server.stub.Read(request, timeout=600), None)

    def update(self, name: str, id_: str, olds: dict, news: dict):
        request = self.pb.UpdateRequest(id=id_, urn=self._urn(name), olds=_struct(olds), news=_struct(news))

        def call():
            response = self.server.stub.Update(request, timeout=600)
            return response, lambda: _plain(response.properties)

        return call

    def delete(self, name: str, id_: str, outputs: dict):
        request = self.pb.DeleteRequest(id=id_, urn=self._urn(name), properties=_struct(outputs))
        return lambda: (self.server.stub.Delete(request, timeout=600), None)

    def _urn(self, name: str) -> str:
        return self.server.urn(self.type_token, name)

    def time_check(self, name: str, olds: dict, news: dict) -> float:
        """Milliseconds of one Check RPC (what preview and up run for every resource)."""
        request = self.pb.CheckRequest(urn=self._urn(name), olds=_struct(olds), news=_struct(news))
        watch = Stopwatch()
        with watch:
            response = self.server.stub.Check(request, timeout=600)
        assert not response.failures, response.failures
        return watch.samples[0]

    def time_diff(self, name: str, id_: str, olds: dict, news: dict) -> float:
        """Milliseconds of one Diff RPC that finds no change (a no-op up, per resource)."""
        request = self.pb.DiffRequest(id=id_, urn=self._urn(name), olds=_struct(olds), news=_struct(news))
        watch = Stopwatch()
        with watch:
            response = self.server.stub.Diff(request, timeout=600)
        assert response.changes == self.pb.DiffResponse.DIFF_NONE, response
        return watch.samples[0]


def grpc_floor(server, count: int = 200) -> float:
    """Median milliseconds of ``GetPluginInfo``: a gRPC round trip to the server doing nothing."""
    from google.protobuf import empty_pb2

    watch = Stopwatch()
    for _ in range(count):
        with watch:
            server.stub.GetPluginInfo(empty_pb2.Empty(), timeout=60)
    return median(watch.samples[count // 10 :])


class InProcessVariant:
    """The same provider class, configured as the server does it, called in this process."""

    def __init__(self, provider, config: dict[str, Any]) -> None:
        from pulumi.dynamic import Config, ConfigureRequest

        self.provider = provider
        self.provider.configure(ConfigureRequest(Config(raw_config=dict(config), project_name=PROJECT)))

    def prepare(self, name: str, news: dict) -> dict:
        result = self.provider.check({}, dict(news))
        assert not result.failures, result.failures
        return _wire_roundtrip(result.inputs)

    def create(self, name: str, inputs: dict):
        def call():
            result = self.provider.create(dict(inputs))
            return result, lambda: (result.id, _wire_roundtrip(result.outs))

        return call

    def read(self, name: str, id_: str, outputs: dict, inputs: dict):
        return lambda: (self.provider.read(id_, dict(outputs)), None)

    def update(self, name: str, id_: str, olds: dict, news: dict):
        def call():
            result = self.provider.update(id_, dict(olds), dict(news))
            return result, lambda: _wire_roundtrip(result.outs)

        return call

    def delete(self, name: str, id_: str, outputs: dict):
        return lambda: (self.provider.delete(id_, dict(outputs)), None)


def _struct(props: dict):
    from harness.provider_server import to_struct

    return to_struct(props)


def _plain(struct) -> dict:
    from harness.provider_server import from_struct
    from harness.pulumi_program import unwrap

    return unwrap(from_struct(struct))


def _wire_roundtrip(props: dict) -> dict:
    """Props as the provider server would hand them over (numbers as floats, and so on)."""
    return _plain(_struct(props))


# --- resource kinds: what is declared, and what "direct" means -------------------------------


@dataclass
class Kind:
    """One resource kind: its declared inputs and its direct (plain client) equivalents."""

    name: str
    resource_class: type[Any]  # a DynamicResource subclass; each has its own keyword arguments
    provider_class: type
    anchors: dict[str, str]  # operation -> what the direct side does
    props: Callable[[str, int], dict]  # (variant, i) -> resource kwargs
    changed_props: Callable[[str, int], dict]  # (variant, i) -> kwargs after the update
    direct_create: Callable[[int], Any]  # -> handle
    direct_read: Callable[[Any], Any]
    direct_update: Callable[[Any, int], Any]
    direct_delete: Callable[[Any], Any]
    setup: Callable[[int], None] = lambda n: None
    template: dict = field(default_factory=dict)

    @property
    def type_token(self) -> str:
        return f"pulumi-python:{self.resource_class._resource_type_name}"

    def declared(self, variant: str, i: int, changed: bool = False) -> dict:
        """What the SDK registers for this resource (``__provider`` included).

        The SDK declares the resource once (a template); every instance carries the same
        ``__provider``, so the others are the template with their own property values.
        """
        from harness.pulumi_program import declared_inputs

        kwargs = (self.changed_props if changed else self.props)(variant, i)
        if not self.template:
            self.template = declared_inputs(lambda: self.resource_class("template", **kwargs))
        return {**self.template, **kwargs}


def databricks_kinds(emulator) -> list[Kind]:
    from databricks.sdk import AccountClient
    from databricks.sdk.service.billing import BudgetPolicy
    from databricks.sdk.service.compute import CustomPolicyTag
    from databricks.sdk.service.iam import GrantRule, RuleSetUpdateRequest

    from providers.budget_policy_grants import BudgetPolicyGrants, BudgetPolicyGrantsProvider
    from providers.serverless_budget_policy import ServerlessBudgetPolicy, ServerlessBudgetPolicyProvider

    config = emulator.config()
    # Built the way the provider builds its client: from host, account id and token.
    client = AccountClient(
        host=config["databricks:host"], account_id=config["databricks:accountId"], token=config["databricks:token"]
    )
    run = uuid.uuid4().hex[:6]

    def policy(i: int, cost_center: str = "4711", policy_id: str | None = None) -> BudgetPolicy:
        return BudgetPolicy(
            policy_id=policy_id,
            policy_name=f"bench-{run}-direct-{i}",
            custom_tags=[
                CustomPolicyTag(key="cost-center", value=cost_center),
                CustomPolicyTag(key="team", value=f"t{i}"),
            ],
            binding_workspace_ids=[1234567890123456],
        )

    serverless = Kind(
        name="ServerlessBudgetPolicy",
        resource_class=ServerlessBudgetPolicy,
        provider_class=ServerlessBudgetPolicyProvider,
        anchors={
            "create": "AccountClient.budget_policy.create(policy, request_id=uuid4())",
            "read": "AccountClient.budget_policy.get(id)",
            "update": "AccountClient.budget_policy.update(id, policy)",
            "delete": "AccountClient.budget_policy.delete(id)",
        },
        props=lambda v, i: dict(
            policy_name=f"bench-{run}-{v}-{i}",
            custom_tags={"cost-center": "4711", "team": f"t{i}"},
            binding_workspace_ids=[1234567890123456],
        ),
        changed_props=lambda v, i: dict(
            policy_name=f"bench-{run}-{v}-{i}",
            custom_tags={"cost-center": "4712", "team": f"t{i}"},
            binding_workspace_ids=[1234567890123456],
        ),
        direct_create=lambda i: client.budget_policy.create(policy=policy(i), request_id=str(uuid.uuid4())).policy_id,
        direct_read=lambda policy_id: client.budget_policy.get(policy_id),
        direct_update=lambda policy_id, i: client.budget_policy.update(policy_id, policy(i, "4712", policy_id)),
        direct_delete=lambda policy_id: client.budget_policy.delete(policy_id),
    )

    policy_ids: dict[str, list[str]] = {}
    users = ["groups/data-science", "users/alice@example.com"]
    managers = ["users/lead@example.com"]
    user_role, manager_role = "roles/budgetPolicy.user", "roles/budgetPolicy.manager"

    def create_policies(n: int) -> None:
        batch = uuid.uuid4().hex[:6]
        for variant in VARIANTS:
            policy_ids[variant] = [created_policy_id(f"bench-{batch}-grants-{variant}-{i}") for i in range(n)]

    def created_policy_id(name: str) -> str:
        policy_id = client.budget_policy.create(policy=BudgetPolicy(policy_name=name)).policy_id
        assert policy_id, "the budget policy API answered without an id"
        return policy_id

    def grant_directly(i: int) -> str:
        read_modify_write(policy_ids["direct"][i], ours, {})
        return policy_ids["direct"][i]

    def rule_set_name(policy_id: str) -> str:
        return f"accounts/{client.config.account_id}/budgetPolicies/{policy_id}/ruleSets/default"

    def read_modify_write(policy_id: str, add: dict[str, set], remove: dict[str, set]) -> None:
        name = rule_set_name(policy_id)
        current = client.access_control.get_rule_set(name=name, etag="")
        rules = {r.role: set(r.principals or []) for r in current.grant_rules or []}
        for role, principals in remove.items():
            rules[role] = rules.get(role, set()) - principals
        for role, principals in add.items():
            rules[role] = rules.get(role, set()) | principals
        grant_rules = [GrantRule(role=r, principals=sorted(p)) for r, p in sorted(rules.items()) if p]
        client.access_control.update_rule_set(
            name=name, rule_set=RuleSetUpdateRequest(name=name, etag=current.etag, grant_rules=grant_rules)
        )

    ours = {user_role: set(users), manager_role: set(managers)}
    grants = Kind(
        name="BudgetPolicyGrants",
        resource_class=BudgetPolicyGrants,
        provider_class=BudgetPolicyGrantsProvider,
        anchors={
            "create": "get_rule_set + update_rule_set(etag) adding our grants",
            "read": "AccountClient.access_control.get_rule_set(name)",
            "update": "get_rule_set + update_rule_set(etag) with one more user",
            "delete": "get_rule_set + update_rule_set(etag) without our grants",
        },
        props=lambda v, i: dict(policy_id=policy_ids[v][i], users=users, managers=managers),
        changed_props=lambda v, i: dict(
            policy_id=policy_ids[v][i], users=[*users, "groups/ml-platform"], managers=managers
        ),
        direct_create=grant_directly,
        direct_read=lambda policy_id: client.access_control.get_rule_set(name=rule_set_name(policy_id), etag=""),
        direct_update=lambda policy_id, i: read_modify_write(policy_id, {user_role: {"groups/ml-platform"}}, {}),
        direct_delete=lambda policy_id: read_modify_write(
            policy_id, {}, {user_role: {*users, "groups/ml-platform"}, manager_role: set(managers)}
        ),
        setup=create_policies,
    )
    return [serverless, grants]


def mlflow_kinds(tracking_uri: str) -> list[Kind]:
    from mlflow import MlflowClient
    from mlflow.entities.gateway_budget_policy import (
        BudgetAction,
        BudgetDuration,
        BudgetDurationUnit,
        BudgetTargetScope,
        BudgetUnit,
    )
    from mlflow.tracking._tracking_service.utils import _get_store

    from providers.budget_alert_webhook import BudgetAlertWebhook, BudgetAlertWebhookProvider
    from providers.experiment_policy_tag import DEFAULT_KEY, ExperimentPolicyTag, ExperimentPolicyTagProvider
    from providers.gateway_budget_policy import GatewayBudgetPolicy, GatewayBudgetPolicyProvider

    client = MlflowClient(tracking_uri)
    store = _get_store(tracking_uri)  # gateway budgets have no MlflowClient method
    run = uuid.uuid4().hex[:6]

    def budget(amount: float) -> dict:
        return dict(
            budget_unit=BudgetUnit.USD,
            budget_amount=amount,
            duration=BudgetDuration(BudgetDurationUnit.MONTHS, 1),
            target_scope=BudgetTargetScope.GLOBAL,
            budget_action=BudgetAction.ALERT,
        )

    gateway = Kind(
        name="GatewayBudgetPolicy",
        resource_class=GatewayBudgetPolicy,
        provider_class=GatewayBudgetPolicyProvider,
        anchors={
            "create": "tracking store create_budget_policy(USD, 100, 1 month, GLOBAL, ALERT)",
            "read": "tracking store get_budget_policy(id)",
            "update": "tracking store update_budget_policy(id, ..., amount=150)",
            "delete": "tracking store delete_budget_policy(id)",
        },
        props=lambda v, i: dict(amount_usd=100.0, window="monthly", action="ALERT"),
        changed_props=lambda v, i: dict(amount_usd=150.0, window="monthly", action="ALERT"),
        direct_create=lambda i: store.create_budget_policy(**budget(100.0)).budget_policy_id,
        direct_read=lambda policy_id: store.get_budget_policy(policy_id),
        direct_update=lambda policy_id, i: store.update_budget_policy(policy_id, **budget(150.0)),
        direct_delete=lambda policy_id: store.delete_budget_policy(policy_id),
    )

    url = "https://hooks.slack.com/services/T0000/B0000/bench"

    def webhook_kind(secret: str | None) -> Kind:
        label = "with secret" if secret else "no secret"
        return Kind(
            name=f"BudgetAlertWebhook ({label})",
            resource_class=BudgetAlertWebhook,
            provider_class=BudgetAlertWebhookProvider,
            anchors={
                "create": "MlflowClient.create_webhook(name, url, [budget_policy.exceeded]"
                + (", secret)" if secret else ")"),
                "read": "MlflowClient.get_webhook(id)",
                "update": "MlflowClient.update_webhook(id, description=...)",
                "delete": "MlflowClient.delete_webhook(id)",
            },
            props=lambda v, i: dict(webhook_name=f"bench-{run}-{v}-{i}", url=url, secret=secret, description="alerts"),
            changed_props=lambda v, i: dict(
                webhook_name=f"bench-{run}-{v}-{i}", url=url, secret=secret, description="alerts v2"
            ),
            direct_create=lambda i: (
                client.create_webhook(
                    name=f"bench-{run}-direct-{i}",
                    url=url,
                    events=["budget_policy.exceeded"],
                    description="alerts",
                    secret=secret,
                ).webhook_id
            ),
            direct_read=lambda webhook_id: client.get_webhook(webhook_id),
            direct_update=lambda webhook_id, i: client.update_webhook(webhook_id, description="alerts v2"),
            direct_delete=lambda webhook_id: client.delete_webhook(webhook_id),
        )

    experiment_ids: dict[str, list[str]] = {}

    def create_experiments(n: int) -> None:
        batch = uuid.uuid4().hex[:6]
        for variant in VARIANTS:
            experiment_ids[variant] = [client.create_experiment(f"bench-{batch}-{variant}-{i}") for i in range(n)]

    policy_a, policy_b = str(uuid.uuid4()), str(uuid.uuid4())

    def tag_directly(i: int) -> str:
        client.set_experiment_tag(experiment_ids["direct"][i], DEFAULT_KEY, policy_a)
        return experiment_ids["direct"][i]

    tag = Kind(
        name="ExperimentPolicyTag",
        resource_class=ExperimentPolicyTag,
        provider_class=ExperimentPolicyTagProvider,
        anchors={
            "create": "MlflowClient.set_experiment_tag(experiment_id, key, policy_id)",
            "read": "MlflowClient.get_experiment(experiment_id).tags[key]",
            "update": "MlflowClient.set_experiment_tag(experiment_id, key, new policy_id)",
            "delete": "MlflowClient.delete_experiment_tag(experiment_id, key)",
        },
        props=lambda v, i: dict(experiment=experiment_ids[v][i], policy_id=policy_a),
        changed_props=lambda v, i: dict(experiment=experiment_ids[v][i], policy_id=policy_b),
        direct_create=tag_directly,
        direct_read=lambda experiment_id: client.get_experiment(experiment_id).tags.get(DEFAULT_KEY),
        direct_update=lambda experiment_id, i: client.set_experiment_tag(experiment_id, DEFAULT_KEY, policy_b),
        direct_delete=lambda experiment_id: client.delete_experiment_tag(experiment_id, DEFAULT_KEY),
        setup=create_experiments,
    )
    return [gateway, webhook_kind("whsec-bench-7f3a9c2e"), webhook_kind(None), tag]


# --- measuring ---------------------------------------------------------------------------------


@dataclass
class OperationResult:
    kind: str
    operation: str
    anchor: str
    times: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VARIANTS})
    calls: dict[str, int | None] = field(default_factory=dict)

    def median(self, variant: str) -> float:
        return median(self.times[variant])

    def p90(self, variant: str) -> float:
        return p90(self.times[variant])

    @property
    def ratio(self) -> float:
        return ratio(self.median("provider"), self.median("direct"))


@dataclass
class LocalRpcResult:
    """Check and no-change Diff through the provider server: no API call, provider-side only."""

    kind: str
    check: list[float] = field(default_factory=list)
    diff: list[float] = field(default_factory=list)


@dataclass
class Resource:
    name: str
    id: str = ""
    outputs: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)


def measure_kind(
    kind: Kind, grpc: GrpcVariant, in_process: InProcessVariant, counter, repeat: int, warmup: int, on_step=None
) -> tuple[list[OperationResult], LocalRpcResult]:
    n = warmup + repeat
    kind.setup(n)
    results = {op: OperationResult(kind.name, op, kind.anchors[op]) for op in OPERATIONS}
    managed = {"provider": grpc, "in-process": in_process}
    resources: dict[str, list[Resource]] = {v: [Resource(f"{v}-{i}") for i in range(n)] for v in managed}
    handles: list[Any] = [None] * n

    def run(op: str, i: int, variant: str) -> None:
        timed = i >= warmup
        counting = i == warmup
        if variant == "direct":
            action = _direct_action(kind, op, i, handles)
        else:
            action = _provider_action(managed[variant], kind, variant, op, i, resources[variant][i])
        if counting:
            counter.start()
        watch = Stopwatch()
        with watch:
            outcome = action()
        if counting:
            results[op].calls[variant] = counter.count()
        if timed:
            results[op].times[variant].extend(watch.samples)
        _record_outcome(op, i, variant, outcome, resources, handles)

    local = LocalRpcResult(kind.name)
    for op in OPERATIONS:
        for i in range(n):
            for variant in _rotation(i):
                run(op, i, variant)
            if on_step is not None:
                on_step()
        if op == "create":
            for i in range(warmup, n):
                resource = resources["provider"][i]
                local.check.append(grpc.time_check(resource.name, resource.inputs, kind.declared("provider", i)))
                local.diff.append(grpc.time_diff(resource.name, resource.id, resource.outputs, resource.inputs))
    return [results[op] for op in OPERATIONS], local


def _rotation(i: int) -> tuple[str, ...]:
    shift = i % len(VARIANTS)
    return VARIANTS[shift:] + VARIANTS[:shift]


def _direct_action(kind: Kind, op: str, i: int, handles: list) -> Callable[[], Any]:
    if op == "create":
        return lambda: kind.direct_create(i)
    if op == "read":
        return lambda: kind.direct_read(handles[i])
    if op == "update":
        return lambda: kind.direct_update(handles[i], i)
    return lambda: kind.direct_delete(handles[i])


def _provider_action(variant_impl, kind: Kind, variant: str, op: str, i: int, resource: Resource) -> Callable[[], Any]:
    """The timed call; everything it needs (checked inputs, wire structs) is built here, untimed."""
    if op == "create":
        resource.inputs = variant_impl.prepare(resource.name, kind.declared(variant, i))
        call = variant_impl.create(resource.name, resource.inputs)
    elif op == "read":
        call = variant_impl.read(resource.name, resource.id, resource.outputs, resource.inputs)
    elif op == "update":
        news = variant_impl.prepare(resource.name, kind.declared(variant, i, changed=True))
        call = variant_impl.update(resource.name, resource.id, resource.outputs, news)
        resource.inputs = news
    else:
        call = variant_impl.delete(resource.name, resource.id, resource.outputs)
    return call


def _record_outcome(op: str, i: int, variant: str, outcome: Any, resources, handles) -> None:
    if variant == "direct":
        if op == "create":
            handles[i] = outcome
        return
    _, finish = outcome
    resource = resources[variant][i]
    if op == "create":
        resource.id, resource.outputs = finish()
    elif op == "update":
        resource.outputs = finish()


# --- where the time goes -----------------------------------------------------------------------


def profile_in_process(kind: Kind, in_process: InProcessVariant, count: int = 20, top: int = 12) -> str:
    """cProfile of ``count`` in-process create+update+delete cycles of one kind (after measuring)."""
    kind.setup(count)
    profiler = cProfile.Profile()
    variant = "in-process"
    for i in range(count):
        resource = Resource(f"profile-{i}")
        resource.inputs = in_process.prepare(resource.name, kind.declared(variant, i))
        profiler.enable()
        created = in_process.provider.create(dict(resource.inputs))
        profiler.disable()
        news = in_process.prepare(resource.name, kind.declared(variant, i, changed=True))
        outs = _wire_roundtrip(created.outs)
        profiler.enable()
        updated = in_process.provider.update(created.id, outs, news)
        in_process.provider.delete(created.id, _wire_roundtrip(updated.outs))
        profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    start = next((n for n, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start : start + top + 1])


# --- report ------------------------------------------------------------------------------------


@dataclass
class Backend:
    """Everything measured against one server."""

    label: str
    operations: list[OperationResult] = field(default_factory=list)
    local_rpcs: list[LocalRpcResult] = field(default_factory=list)
    grpc_floor_ms: float = float("nan")
    profiles: list[str] = field(default_factory=list)


def operations_table(backend: Backend) -> str:
    headers = ["resource", "op", "direct anchor", "API calls prov/direct", "direct ms", "direct p90",
               "in-proc ms", "provider ms", "provider p90", "ratio"]  # fmt: skip
    rows = [
        [r.kind, r.operation, r.anchor, f"{_n(r.calls.get('provider'))}/{_n(r.calls.get('direct'))}",
         r.median("direct"), r.p90("direct"), r.median("in-process"), r.median("provider"), r.p90("provider"), r.ratio]
        for r in backend.operations
    ]  # fmt: skip
    return table(
        headers,
        rows,
        title=f"Per-operation latency, {backend.label} (medians in ms unless p90; ratio = provider/direct)",
    )


def breakdown_table(backend: Backend) -> str:
    headers = ["resource", "op", "direct ms", "+ provider logic & extra calls", "+ gRPC & server (de)serialization",
               "= provider ms", "ratio", "≤ 1.2"]  # fmt: skip
    rows = []
    for r in backend.operations:
        direct, inproc, provider = r.median("direct"), r.median("in-process"), r.median("provider")
        rows.append(
            [
                r.kind,
                r.operation,
                direct,
                inproc - direct,
                provider - inproc,
                provider,
                r.ratio,
                r.ratio <= TARGET_RATIO,
            ]
        )
    return table(headers, rows, title=f"Where the provider's extra time goes, {backend.label} (medians, ms)")


def local_rpc_table(backends: list[Backend]) -> str:
    headers = ["server", "resource", "gRPC floor ms", "Check ms", "Check p90", "Diff (no change) ms", "Diff p90"]
    rows = [
        [b.label, r.kind, b.grpc_floor_ms, median(r.check), p90(r.check), median(r.diff), p90(r.diff)]
        for b in backends
        for r in b.local_rpcs
    ]
    return table(
        headers,
        rows,
        title=(
            "Provider-side RPCs without API calls (per resource in preview / no-op up); "
            "gRPC floor = GetPluginInfo round trip"
        ),
    )


def summary(backends: list[Backend]) -> str:
    lines = []
    for backend in backends:
        ratios = [r.ratio for r in backend.operations]
        met = sum(1 for x in ratios if x <= TARGET_RATIO)
        overheads = [r.median("provider") - r.median("direct") for r in backend.operations]
        lines.append(
            f"{backend.label}: median ratio {median(ratios):.2f} (target ≤ {TARGET_RATIO}), {met}/{len(ratios)} "
            f"operations within target; median absolute overhead {median(overheads):.2f} ms per operation."
        )
    every = [r for b in backends if not b.label.endswith("latency)") for r in b.operations]
    worst = sorted(every, key=lambda r: r.ratio, reverse=True)[:5]
    lines.append("Largest ratios: " + "; ".join(f"{r.kind} {r.operation} {r.ratio:.2f}" for r in worst))
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)


# --- main --------------------------------------------------------------------------------------


def measure_backend(
    backend: Backend, kinds: list[Kind], server, config: dict, counter, args, profile_kinds=()
) -> Backend:
    backend.grpc_floor_ms = grpc_floor(server)
    for kind in kinds:
        if args.kinds and not any(wanted in kind.name for wanted in args.kinds.split(",")):
            continue
        started = time.perf_counter()
        in_process = InProcessVariant(kind.provider_class(), config)
        iterations = len(OPERATIONS) * (args.repeat + args.warmup)
        with Progress(f"provider_overhead: {backend.label}: {kind.name}", total=iterations) as progress:
            operations, local = measure_kind(
                kind, GrpcVariant(server, kind.type_token), in_process, counter, args.repeat, args.warmup,
                on_step=progress.advance,
            )  # fmt: skip
        backend.operations += operations
        backend.local_rpcs.append(local)
        print(f"  {kind.name}: {time.perf_counter() - started:.1f}s", flush=True)
        if kind.name in profile_kinds and args.profile:
            backend.profiles.append(
                f"cProfile, {kind.name} in-process create+update+delete, {backend.label} (top by own time):\n"
                + profile_in_process(kind, in_process)
            )
    return backend


def run_databricks(args, latency_ms: float) -> Backend:
    label = "Databricks emulator" + (f" (+{latency_ms:g} ms latency)" if latency_ms else "")
    print(f"{label}:", flush=True)
    with databricks_emulator() as emulator, provider_server(emulator.config()) as server:
        if latency_ms:
            # Every API request waits this long in the emulator: a remote account API, roughly.
            emulator.control.inject_fault("slow", method="*", path="/api/", count=None, seconds=latency_ms / 1000)
        profile = () if latency_ms else ("BudgetPolicyGrants",)
        return measure_backend(Backend(label), databricks_kinds(emulator), server, emulator.config(),
                               EmulatorCounter(emulator), args, profile)  # fmt: skip


def run_mlflow(args, backend_kind: str) -> Backend:
    profile = ("BudgetAlertWebhook (with secret)", "ExperimentPolicyTag")
    if backend_kind == "server":
        print("mlflow server:", flush=True)
        with contextlib.ExitStack() as stack:
            with Progress("provider_overhead: starting mlflow server"):
                mlflow = stack.enter_context(mlflow_server())
            return _run_mlflow_kinds(
                Backend("mlflow server (REST)"), mlflow.tracking_uri, MlflowCounter(mlflow), args, profile
            )
    print("sqlite:/// store:", flush=True)
    directory = Path(tempfile.mkdtemp(prefix="bench-sqlite-"))
    try:
        uri = f"sqlite:///{directory / 'mlflow.db'}"
        return _run_mlflow_kinds(Backend("sqlite:/// store"), uri, NoCounter(), args, ())
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run_mlflow_kinds(backend: Backend, tracking_uri: str, counter, args, profile) -> Backend:
    config = {"mlflow:trackingUri": tracking_uri}
    kinds = mlflow_kinds(tracking_uri)  # opens (for sqlite: migrates) the store before the clock
    with provider_server(config) as server:
        return measure_backend(backend, kinds, server, config, counter, args, profile)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.provider_overhead", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeat", type=int, default=40, help="measured iterations per operation and variant (default 40)"
    )
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured iterations first (default 5)")
    parser.add_argument(
        "--mlflow", choices=("server", "sqlite", "both"), default="server", help="MLflow backend(s) (default server)"
    )
    parser.add_argument(
        "--emulator-latency-ms",
        type=float,
        default=30.0,
        help="also run the Databricks kinds with this much latency added by the emulator (0 = skip; default 30)",
    )
    parser.add_argument(
        "--kinds", default="", help="only resource kinds whose name contains one of these (comma-separated)"
    )
    parser.add_argument("--no-profile", dest="profile", action="store_false", help="skip the cProfile sections")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    use_provider_env()
    started = time.perf_counter()
    databricks = not args.kinds or any(k in args.kinds for k in ("ServerlessBudgetPolicy", "BudgetPolicyGrants"))
    mlflow = not args.kinds or not all(
        k in ("ServerlessBudgetPolicy", "BudgetPolicyGrants") for k in args.kinds.split(",")
    )
    backends = [run_databricks(args, 0.0)] if databricks else []
    for kind in (("server", "sqlite") if args.mlflow == "both" else (args.mlflow,)) if mlflow else ():
        backends.append(run_mlflow(args, kind))
    if args.emulator_latency_ms and databricks:
        backends.append(run_databricks(args, args.emulator_latency_ms))

    header = (
        "# (1) Overhead per provider operation\n"
        f"{machine_context()}\n"
        f"{args.repeat} measured + {args.warmup} warm-up iterations per operation and variant, interleaved "
        "(order rotates every iteration).\n"
        "provider = gRPC call to the SDK's provider server (`python -m pulumi.dynamic`), request prebuilt; "
        "in-proc = the same provider object called in this process (no gRPC); direct = the anchor named, with a "
        "long-lived client. API calls = requests the server itself logged for one operation (? = not counted)."
    )
    blocks = [header]
    for backend in backends:
        blocks += [operations_table(backend), breakdown_table(backend)]
    blocks.append(local_rpc_table(backends))
    blocks += [p for b in backends for p in b.profiles]
    blocks.append(summary(backends) + f"\nRuntime: {time.perf_counter() - started:.0f} s")
    # A filtered run must not overwrite the full report.
    emit("provider_overhead" + ("-filtered" if args.kinds else ""), "\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
