"""The deployment driver every provider test uses: one resource through ``pulumi up`` /
``refresh`` / ``destroy`` steps over gRPC, as the engine takes them.

* ``declare(ResourceClass, name, **kwargs)``: the inputs the SDK sends the engine for a resource;
* ``Deployment``: ``up`` (Check, then Create, or Diff then Update / Replace / nothing),
  ``check``, ``diff``, ``refresh``, ``destroy``;
* ``deploy`` (fixture): ``deploy(provider_server, ResourceClass)`` -> a ``Deployment``, destroyed
  at the end of the test if anything is left.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pulumi.runtime.proto import provider_pb2

from harness.provider_server import CheckOutcome, DiffOutcome, ProviderServer, ReadOutcome, to_struct
from harness.pulumi_program import declared_inputs
from providers.core import DynamicResource


def declare(resource_class: type, name: str = "res", **kwargs: Any) -> dict[str, Any]:
    """The properties the SDK sends the engine when a program declares this resource."""
    return declared_inputs(lambda: resource_class(name, **kwargs))


def type_token(resource_class: type[DynamicResource]) -> str:
    return f"pulumi-python:{resource_class._resource_type_name}"


@dataclass
class Deployment:
    """One resource taken through ``pulumi up`` / ``refresh`` / ``destroy`` steps over gRPC.

    ``up`` does what the engine does for one resource: Check against the old inputs, then Create,
    or Diff against the old outputs followed by Update, create-before-delete Replace (or
    delete-before-create when the provider asks) or nothing.
    """

    provider: ProviderServer
    resource_class: type
    name: str = field(default_factory=lambda: f"res-{uuid.uuid4().hex[:8]}")
    id: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return ProviderServer.urn(type_token(self.resource_class), self.name)

    def check(self, **kwargs: Any) -> CheckOutcome:
        news = declare(self.resource_class, self.name, **kwargs)
        return self.provider.check(self.urn, news, olds=self.inputs or None)

    def diff(self, **kwargs: Any) -> DiffOutcome:
        checked = self.check(**kwargs)
        assert not checked.failures, checked.failures
        return self.provider.diff(self.urn, self.id, self.outputs, checked.inputs)

    def up(self, **kwargs: Any) -> str:
        """Returns the step taken: ``create``, ``update``, ``replace`` or ``same``."""
        checked = self.check(**kwargs)
        assert not checked.failures, checked.failures
        if not self.id:
            self.id, self.outputs = self.provider.create(self.urn, checked.inputs)
            self.inputs = checked.inputs
            return "create"
        diff = self.provider.diff(self.urn, self.id, self.outputs, checked.inputs)
        if diff.changes == "none":
            self.inputs = checked.inputs
            return "same"
        if diff.replaces:
            self._replace(checked.inputs, self._delete_before_replace(checked.inputs))
            return "replace"
        self.outputs = self.provider.update(self.urn, self.id, self.outputs, checked.inputs)
        self.inputs = checked.inputs
        return "update"

    def _delete_before_replace(self, inputs: dict[str, Any]) -> bool:
        # DiffOutcome does not carry deleteBeforeReplace: ask the provider server directly.
        request = provider_pb2.DiffRequest(
            id=self.id, urn=self.urn, olds=to_struct(self.outputs), news=to_struct(inputs)
        )
        return self.provider.stub.Diff(request, timeout=600).deleteBeforeReplace

    def _replace(self, inputs: dict[str, Any], delete_first: bool) -> None:
        old_id, old_outputs = self.id, self.outputs
        if delete_first:
            self.provider.delete(self.urn, old_id, old_outputs)
        self.id, self.outputs = self.provider.create(self.urn, inputs)
        self.inputs = inputs
        if not delete_first:
            self.provider.delete(self.urn, old_id, old_outputs)

    def refresh(self) -> ReadOutcome:
        read = self.provider.read(self.urn, self.id, self.outputs, self.inputs)
        self.id = read.id
        if read.id:
            self.outputs = read.outs
            self.inputs = {**(read.inputs or {}), "__provider": self.outputs["__provider"]}
        else:
            self.outputs, self.inputs = {}, {}
        return read

    def destroy_and_retry(self) -> ReadOutcome:
        """Destroy, then do what a retried destroy or a refresh does with the old state: read it
        (the answer should say gone) and delete it again (must succeed).  Returns that read."""
        old_id, old_outputs = self.id, dict(self.outputs)
        self.destroy()
        read = self.provider.read(self.urn, old_id, old_outputs)
        self.provider.delete(self.urn, old_id, old_outputs)
        return read

    def destroy(self) -> None:
        if self.id:
            self.provider.delete(self.urn, self.id, self.outputs)
            self.id = ""


@pytest.fixture
def deploy() -> Iterator[Any]:
    """``deploy(provider, ResourceClass)`` → a ``Deployment``; whatever is left is destroyed."""
    deployments: list[Deployment] = []

    def start(provider: ProviderServer, resource_class: type) -> Deployment:
        deployment = Deployment(provider, resource_class)
        deployments.append(deployment)
        return deployment

    yield start
    for deployment in reversed(deployments):
        with contextlib.suppress(Exception):  # best effort: the test's own failure matters more
            deployment.destroy()
