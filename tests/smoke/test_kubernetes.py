"""Smoke test of the local control plane: etcd + kube-apiserver + controller-manager + scheduler + kwok.

Proves what the operator relies on: a real apiserver of the pinned version (>= 1.30), Deployments that
become Available (controller-manager builds the ReplicaSet, the scheduler binds the pods to the kwok
node, kwok marks them Running/Ready), namespace deletion that completes, and ValidatingAdmissionPolicy
enforced by the apiserver.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.smoke

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def pinned(name: str) -> str:
    text = (REPO / "env" / "versions.env").read_text()
    m = re.search(rf"^{name}=(\S+)$", text, re.M)
    assert m, f"{name} not in env/versions.env"
    return m.group(1)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, step: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


@pytest.fixture(scope="module")
def api(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


def test_server_version(api: client.ApiClient) -> None:
    info = client.VersionApi(api).get_code()
    assert info.git_version == f"v{pinned('K8S_VERSION')}"
    assert (int(info.major), int(info.minor.rstrip("+"))) >= (1, 30)


def test_fake_node_ready(api: client.ApiClient) -> None:
    nodes = client.CoreV1Api(api).list_node(label_selector="type=kwok").items
    assert nodes, "no kwok node"
    ready = {c.type: c.status for c in nodes[0].status.conditions or []}
    assert ready.get("Ready") == "True"


def deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="example.invalid/app:1")]),
            ),
        ),
    )


def test_deployment_becomes_available_and_namespace_deletion_completes(api: client.ApiClient, namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    # The ServiceAccount controller must give the namespace its default account before pods are admitted.
    wait_for("default ServiceAccount", lambda: core.list_namespaced_service_account(namespace).items, 30)
    apps.create_namespaced_deployment(namespace, deployment("web", 2))

    def available() -> Any:
        d = apps.read_namespaced_deployment("web", namespace)
        conds = {c.type: c.status for c in (d.status.conditions or [])}
        return d if conds.get("Available") == "True" and d.status.ready_replicas == 2 else None

    d = wait_for("Deployment web Available with 2 ready replicas", available, 60)
    assert d.status.available_replicas == 2
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    for p in pods:
        assert p.spec.node_name, "pod was not scheduled"
        assert p.status.phase == "Running"
        assert p.status.pod_ip

    # Owner-reference garbage collection: deleting the Deployment removes its ReplicaSet and pods.
    apps.delete_namespaced_deployment("web", namespace)
    wait_for("pods garbage-collected", lambda: not core.list_namespaced_pod(namespace).items or None, 60)

    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except ApiException as e:
            return e.status == 404
        return False

    wait_for(f"namespace {namespace} deleted", gone, 60)


def test_validating_admission_policy_is_enforced(api: client.ApiClient, namespace: str) -> None:
    adm, core = client.AdmissionregistrationV1Api(api), client.CoreV1Api(api)
    name = f"smoke-deny-{namespace}"
    adm.create_validating_admission_policy(
        client.V1ValidatingAdmissionPolicy(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1ValidatingAdmissionPolicySpec(
                failure_policy="Fail",
                match_constraints=client.V1MatchResources(
                    resource_rules=[
                        client.V1NamedRuleWithOperations(
                            api_groups=[""], api_versions=["v1"], operations=["CREATE"], resources=["configmaps"]
                        )
                    ]
                ),
                validations=[client.V1Validation(expression="!has(object.data) || !('forbidden' in object.data)")],
            ),
        )
    )
    try:
        adm.create_validating_admission_policy_binding(
            client.V1ValidatingAdmissionPolicyBinding(
                metadata=client.V1ObjectMeta(name=name),
                spec=client.V1ValidatingAdmissionPolicyBindingSpec(
                    policy_name=name,
                    validation_actions=["Deny"],
                    match_resources=client.V1MatchResources(
                        namespace_selector=client.V1LabelSelector(
                            match_labels={"kubernetes.io/metadata.name": namespace}
                        )
                    ),
                ),
            )
        )

        def denied() -> str | None:
            cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="x-"), data={"forbidden": "1"})
            try:
                created = core.create_namespaced_config_map(namespace, cm)
            except ApiException as e:
                return e.body if e.status == 422 else None
            core.delete_namespaced_config_map(created.metadata.name, namespace)
            return None  # the policy is not active yet (informer sync)

        body = wait_for("the policy to deny a forbidden ConfigMap", denied, 30)
        assert name in body
        core.create_namespaced_config_map(
            namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="allowed"), data={"ok": "1"})
        )
    finally:
        for delete in (adm.delete_validating_admission_policy_binding, adm.delete_validating_admission_policy):
            try:
                delete(name)
            except ApiException as e:
                if e.status != 404:
                    raise
