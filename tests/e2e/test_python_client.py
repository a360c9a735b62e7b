"""The official Kubernetes Python client against edgek8s, loaded from the admin kubeconfig (mTLS).

Rows of docs/compatibility.md like the kubectl ones: the client must see what it sees against upstream
kube-apiserver (typed objects, ApiException codes, strategic merge patches, watch events).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.kubectl_support import Cluster, unique

kubernetes = pytest.importorskip("kubernetes", reason="the official client: .venv/bin/pip install kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

compat = pytest.mark.compat


@pytest.fixture(scope="module")
def api(edgek8s_cluster: Cluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(edgek8s_cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = unique("pyclient")
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    with contextlib.suppress(ApiException):
        client.CoreV1Api(api).delete_namespace(name)


def error_code(call: Any, *args: Any, **kwargs: Any) -> int:
    with pytest.raises(ApiException) as caught:
        call(*args, **kwargs)
    return int(caught.value.status)


@compat("python client", "CoreV1Api configmaps: list/create/patch/delete")
def test_configmaps(api: client.ApiClient, namespace: str) -> None:
    v1 = client.CoreV1Api(api)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings", labels={"app": "py"}),
                              data={"mode": "fast", "level": "1"})
    created = v1.create_namespaced_config_map(namespace, body)
    assert isinstance(created, client.V1ConfigMap)
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert error_code(v1.create_namespaced_config_map, namespace, body) == 409
    listed = v1.list_namespaced_config_map(namespace, label_selector="app=py")
    assert isinstance(listed, client.V1ConfigMapList) and listed.metadata.resource_version
    assert [(c.metadata.name, c.data) for c in listed.items] == [("settings", {"mode": "fast", "level": "1"})]
    # A dict body is sent as a strategic merge patch; None removes a key.
    patched = v1.patch_namespaced_config_map("settings", namespace, {"data": {"mode": "slow", "level": None}})
    assert patched.data == {"mode": "slow"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    # A list body is a JSON patch.
    v1.patch_namespaced_config_map("settings", namespace, [{"op": "add", "path": "/data/extra", "value": "x"}])
    assert v1.read_namespaced_config_map("settings", namespace).data == {"mode": "slow", "extra": "x"}
    # Upstream answers a configmap DELETE with a Status naming what was deleted (not the object itself).
    # (kubernetes 37's generated client declares DELETE responses as a plain "object": a dict)
    status = v1.delete_namespaced_config_map("settings", namespace)
    assert (status["kind"], status["status"]) == ("Status", "Success"), status
    assert (status["details"]["name"], status["details"]["kind"]) == ("settings", "configmaps")
    assert status["details"]["uid"] == created.metadata.uid
    assert error_code(v1.read_namespaced_config_map, "settings", namespace) == 404
    assert error_code(v1.delete_namespaced_config_map, "settings", namespace) == 404
    invalid = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="Bad_Name"))
    assert error_code(v1.create_namespaced_config_map, namespace, invalid) == 422


@compat("python client", "CoreV1Api namespaces: list/create/patch/delete")
def test_namespaces(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    name = unique("pyns")
    created = v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    assert created.status.phase == "Active"
    assert created.metadata.labels == {"kubernetes.io/metadata.name": name}
    assert created.spec.finalizers == ["kubernetes"]
    listed = {n.metadata.name for n in v1.list_namespace().items}
    assert {name, "default", "kube-system", "kube-public", "kube-node-lease"} <= listed
    patched = v1.patch_namespace(name, {"metadata": {"labels": {"team": "edge"}}})
    assert patched.metadata.labels == {"kubernetes.io/metadata.name": name, "team": "edge"}
    v1.delete_namespace(name)
    # Termination is asynchronous upstream: the namespace is either gone or Terminating.
    try:
        after = v1.read_namespace(name)
    except ApiException as exc:
        assert exc.status == 404
    else:
        assert after.status.phase == "Terminating" and after.metadata.deletion_timestamp is not None


@compat("python client", "AppsV1Api deployments: create/read/patch")
def test_deployments(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    body = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[
                    client.V1Container(name="nginx", image="nginx:1.25",
                                       ports=[client.V1ContainerPort(container_port=80)]),
                    client.V1Container(name="log", image="busybox:1.36"),
                ]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, body)
    assert created.metadata.generation == 1
    # Server-side defaults come back typed.
    nginx = created.spec.template.spec.containers[0]
    assert nginx.ports[0].protocol == "TCP" and nginx.image_pull_policy == "IfNotPresent"
    assert created.spec.strategy.type == "RollingUpdate" and created.spec.revision_history_limit == 10
    read = apps.read_namespaced_deployment("web", namespace)
    assert read.metadata.uid == created.metadata.uid and read.spec.replicas == 2
    patch = {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.26"}]}}}}
    patched = apps.patch_namespaced_deployment("web", namespace, patch)
    assert patched.spec.replicas == 3 and patched.metadata.generation == 2
    # Strategic merge: containers merge by name, so the sidecar and nginx's ports survive.
    containers = patched.spec.template.spec.containers
    assert [(c.name, c.image) for c in containers] == [("nginx", "nginx:1.26"), ("log", "busybox:1.36")]
    assert containers[0].ports[0].container_port == 80


@compat("python client", "watch.Watch().stream: ADDED/MODIFIED/DELETED")
def test_watch_stream(api: client.ApiClient, namespace: str) -> None:
    v1 = client.CoreV1Api(api)
    start = v1.list_namespaced_config_map(namespace).metadata.resource_version
    events: list[tuple[str, str, dict[str, str] | None]] = []
    ready = threading.Event()
    stream = watch.Watch()

    def consume() -> None:
        ready.set()
        for event in stream.stream(v1.list_namespaced_config_map, namespace, resource_version=start,
                                   timeout_seconds=20):
            obj = event["object"]
            if obj.metadata.name != "watched":
                continue
            events.append((event["type"], obj.metadata.name, obj.data))
            if event["type"] == "DELETED":
                stream.stop()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    ready.wait(5)
    v1.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"),
                                                                  data={"n": "1"}))
    v1.replace_namespaced_config_map("watched", namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="watched"), data={"n": "2"}))
    v1.delete_namespaced_config_map("watched", namespace)
    consumer.join(25)
    assert not consumer.is_alive(), f"no DELETED event within the watch; events so far: {events}"
    assert events == [("ADDED", "watched", {"n": "1"}), ("MODIFIED", "watched", {"n": "2"}),
                      ("DELETED", "watched", {"n": "2"})]
