"""Authorization: what each authenticated identity may do; everything else is a 403 Status.

- ``system:masters``: anything.
- A node (``system:node:<name>`` in ``system:nodes``), as Kubernetes' Node authorizer plus
  NodeRestriction allow, no more:
  pods: get one bound to it; list/watch only with ``fieldSelector=spec.nodeName=<self>`` (stricter than
  upstream's RBAC, which lets nodes list every pod: pod specs carry env values and the kubelet never
  needs other nodes' pods, it always selects its own); update/patch ``status`` and delete of pods bound
  to it. Nodes: get/list/watch all (networking needs every node's addresses); create/get/update/patch
  its own Node (and its status). Leases: create/get/update/patch its own in ``kube-node-lease``. Events:
  create/update/patch (upstream's system:node role; the kubelet bumps counts with PUT). Secrets,
  configmaps, persistentvolumeclaims: get (or list/watch pinned to one ``metadata.name``, the kubelet's
  watch strategy) only when a pod bound to the node references them.
  services, endpoints, endpointslices: get/list/watch.
- A join token (``system:bootstrappers``): only ``POST /edgek8s/v1/join`` (its CSR).
- Anyone: the public health, version and cluster-info endpoints (also when sending credentials).
- ``system:masters`` may impersonate (``kubectl --as``): the request is then decided as that user.
- Any authenticated identity: discovery (``/api``, ``/apis``, ``/openapi``), ``/edgek8s/v1/renew``
  (renewing its own certificate) and creating SelfSubject{Access,Rules}Reviews and SelfSubjectReviews, except
  join tokens. RBAC objects are stored, never consulted here.

``decide`` is pure over request attributes and a ``NodeGraph`` (which pods are bound where and what
they reference), so the decision tables are unit-tested without a server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from edgek8s.api.authn import PUBLIC_PATHS, USER, User
from edgek8s.api.context import CONFIG, STORE
from edgek8s.api.impersonation import impersonate, wants_impersonation
from edgek8s.model import errors
from edgek8s.model.nodelabels import node_label_violation
from edgek8s.model.resources import ResourceType, resource_id
from edgek8s.model.selectors import FieldSelector
from edgek8s.store.raftstore import RaftStore

MASTERS = "system:masters"
NODES = "system:nodes"
NODE_PREFIX = "system:node:"
BOOTSTRAPPERS = "system:bootstrappers"
JOIN_PATH = "/edgek8s/v1/join"
RENEW_PATH = "/edgek8s/v1/renew"
PODS = resource_id("", "pods")
NODES_ID = resource_id("", "nodes")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REVIEWS = frozenset({("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
                      ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
                      ("authentication.k8s.io", "selfsubjectreviews", "create")})


@dataclass(frozen=True, slots=True, kw_only=True)
class Attributes:
    """What a request does, as the authorizer sees it (resource requests have ``plural`` set)."""

    verb: str  # get list watch create update patch delete deletecollection, or the HTTP method for paths
    path: str
    group: str = ""
    plural: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    field_selector: str = ""


class NodeGraph(Protocol):
    def pod_node(self, namespace: str, name: str) -> str | None: ...

    def node_references(self, node: str, plural: str, namespace: str, name: str) -> bool: ...


def node_name(user: User) -> str | None:
    if NODES in user.groups and user.name.startswith(NODE_PREFIX):
        return user.name.removeprefix(NODE_PREFIX) or None
    return None


def _pinned(selector: str, field: str) -> str | None:
    try:
        return FieldSelector.parse(selector).requires_exact_match(field)
    except errors.StatusError:
        return None


def _decide_node(node: str, a: Attributes, graph: NodeGraph) -> str | None:
    read = a.verb in ("get", "list", "watch")
    if a.group == "" and a.plural == "pods":
        if a.verb in ("list", "watch"):
            if _pinned(a.field_selector, "spec.nodeName") == node:
                return None
            return f"node {node!r} can only list/watch pods with fieldSelector spec.nodeName={node}"
        bound = a.name != "" and graph.pod_node(a.namespace, a.name) == node
        if a.verb == "get" and not a.subresource and bound:
            return None
        if a.verb in ("update", "patch") and a.subresource == "status" and bound:
            return None
        if a.verb == "delete" and not a.subresource and bound:
            return None
        return f"node {node!r} can only read, update the status of, or delete pods bound to it"
    if a.group == "" and a.plural == "nodes":
        if a.verb in ("list", "watch") or (a.verb == "get" and not a.subresource):
            return None
        if a.verb in ("create", "get", "update", "patch") and a.name == node and a.subresource in ("", "status"):
            return None
        if a.verb == "create" and not a.name and not a.subresource:
            return None  # the body's name is checked by ``check_create_body``
        return f"node {node!r} can only modify its own Node object"
    if a.group == "coordination.k8s.io" and a.plural == "leases":
        own = a.name == node or (a.verb == "create" and not a.name)
        if a.namespace == "kube-node-lease" and a.verb in ("create", "get", "update", "patch") and own:
            return None
        return f"node {node!r} can only access its own lease in kube-node-lease"
    if a.group in ("", "events.k8s.io") and a.plural == "events":
        return None if a.verb in ("create", "update", "patch") else f"node {node!r} can only write events"
    if a.group == "" and a.plural in ("secrets", "configmaps", "persistentvolumeclaims"):
        name = a.name if a.verb == "get" else _pinned(a.field_selector, "metadata.name") if read else None
        if read and name and a.namespace and graph.node_references(node, a.plural, a.namespace, name):
            return None
        return f"no relationship found between node {node!r} and this object"
    if (a.group, a.plural) in (("", "services"), ("", "endpoints"), ("discovery.k8s.io", "endpointslices")):
        return None if read else f"node {node!r} can only read {a.plural}"
    return f"node {node!r} cannot {a.verb} {a.plural or a.path}"


def decide(user: User, a: Attributes, graph: NodeGraph) -> str | None:
    """None when ``user`` may do ``a``; otherwise why not (the 403 message)."""
    if MASTERS in user.groups or (a.path in PUBLIC_PATHS and a.verb == "GET"):
        return None
    if BOOTSTRAPPERS in user.groups:
        if a.path == JOIN_PATH and a.verb == "POST":
            return None
        return "a join token may only submit its certificate signing request"
    if not a.plural:
        if a.path in ("/api", "/apis") or a.path.startswith(("/api/", "/apis/", "/openapi/")):
            return None  # discovery documents (resource requests always carry ``plural``)
        if a.path == RENEW_PATH and a.verb == "POST":
            return None
        return f"user {user.name!r} cannot {a.verb} path {a.path!r}"
    if (a.group, a.plural, a.verb) in _REVIEWS:
        return None  # "may I?" and "who am I?" (api/reviews.py): upstream's system:basic-user
    node = node_name(user)
    if node is not None:
        return _decide_node(node, a, graph)
    return f"user {user.name!r} cannot {a.verb} resource {a.plural!r}"


class StoreGraph:
    """``NodeGraph`` read from this replica's state (O(pods on the node) per question)."""

    def __init__(self, store: RaftStore) -> None:
        self._state = store.state

    def pod_node(self, namespace: str, name: str) -> str | None:
        stored, _ = self._state.get(PODS, namespace, name)
        if stored is None:
            return None
        return (stored.extra_fields or {}).get("spec.nodeName") or None

    def node_references(self, node: str, plural: str, namespace: str, name: str) -> bool:
        pods, _ = self._state.list(PODS, namespace)
        for stored in pods:
            if (stored.extra_fields or {}).get("spec.nodeName") == node and name in pod_references(
                stored.decode(), plural
            ):
                return True
        return False


def _containers(spec: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key) or ()


def pod_references(pod: dict[str, Any], plural: str) -> set[str]:
    """Names of the ``plural`` (secrets, configmaps, persistentvolumeclaims) a pod uses."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    kinds = {"secrets": ("secret", "secretName", "secretKeyRef", "secretRef"),
             "configmaps": ("configMap", "name", "configMapKeyRef", "configMapRef")}
    if plural == "persistentvolumeclaims":
        for volume in spec.get("volumes") or ():
            names.add(str((volume.get("persistentVolumeClaim") or {}).get("claimName", "")))
        return names - {""}
    volume_key, name_key, key_ref, env_from_ref = kinds[plural]
    for volume in spec.get("volumes") or ():
        names.add(str((volume.get(volume_key) or {}).get(name_key, "")))
        for source in (volume.get("projected") or {}).get("sources") or ():
            names.add(str((source.get(volume_key) or {}).get("name", "")))
    for container in _containers(spec):
        for env in container.get("env") or ():
            names.add(str(((env.get("valueFrom") or {}).get(key_ref) or {}).get("name", "")))
        for env_from in container.get("envFrom") or ():
            names.add(str((env_from.get(env_from_ref) or {}).get("name", "")))
    if plural == "secrets":
        for pull in spec.get("imagePullSecrets") or ():
            names.add(str(pull.get("name", "")))
    return names - {""}


_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def attributes(request: web.Request) -> Attributes:
    """The authorizer's view of a request (paths that are not resource requests keep ``plural`` empty)."""
    path = request.path
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return Attributes(verb=request.method, path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    plural, name = rest[0], rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if plural == "namespaces" and len(rest) == 1 and namespace:
        plural, name = "namespaces", namespace
    if request.method == "GET":
        watch = request.query.get("watch", "").lower() in ("1", "true")
        verb = "get" if name else "watch" if watch else "list"
    elif request.method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _METHOD_VERBS.get(request.method, request.method.lower())
    return Attributes(verb=verb, path=path, group=group, plural=plural, namespace=namespace, name=name,
                      subresource=subresource, field_selector=request.query.get("fieldSelector", ""))


@web.middleware
async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
    user = request.get(USER)
    if user is None:  # a public endpoint reached without credentials
        return await handler(request)
    if wants_impersonation(request):
        user = impersonate(request, user, privileged=MASTERS in user.groups)
    if MASTERS in user.groups and request.method != "DELETE":
        return await handler(request)  # the hot path: admins and in-process clients
    a = attributes(request)
    reason = decide(user, a, StoreGraph(request.app[STORE]))
    if reason is not None:
        raise errors.Forbidden(f"{user.name} is forbidden: {reason}")
    node = node_name(user)
    if node is not None and a.verb == "create" and a.plural in ("nodes", "leases") and not a.name:
        await check_create_body(request, node)
    deleting_nodes = a.plural == "nodes" and a.verb in ("delete", "deletecollection") and request.app[CONFIG].api.tls
    before = _node_names(request, a) if deleting_nodes else []
    response = await handler(request)
    if deleting_nodes and response.status < 300:
        from edgek8s.api.credentials import revoke_nodes

        state = request.app[STORE].state
        await revoke_nodes(request.app[STORE], [n for n in before if state.get(NODES_ID, "", n)[0] is None])
    return response


def _node_names(request: web.Request, a: Attributes) -> list[str]:
    if a.name:
        return [a.name]
    stored, _ = request.app[STORE].state.list(NODES_ID, None)
    return [obj.name for obj in stored]


async def check_create_body(request: web.Request, node: str) -> None:
    """NodeRestriction for creates: a node may create only the Node and Lease named after itself."""
    from edgek8s.api.context import parse_json

    body = parse_json(await request.read())
    metadata = (body.get("metadata") or {}) if isinstance(body, dict) else {}
    if metadata.get("name") != node:
        raise errors.Forbidden(f"{NODE_PREFIX}{node} is forbidden: a node can only create an object named {node!r}")
    if request.path.endswith("/nodes"):
        labels = metadata.get("labels") if isinstance(metadata, dict) else None
        _refuse_labels(node, None, labels if isinstance(labels, dict) else {})


def admit_node_write(request: web.Request, rtype: ResourceType, old_labels: Mapping[str, str] | None,
                     new: dict[str, Any]) -> None:
    """NodeRestriction for updates, patches and applies of a Node by a node (any subresource): only
    kubelet labels may be added, changed or removed (``old_labels`` None: a create). Callers pass the
    labels of the version the write is conditioned on, so nothing slips in between check and write."""
    user = request.get(USER)
    node = node_name(user) if user is not None and rtype.id == NODES_ID else None
    if node is not None:
        labels = (new.get("metadata") or {}).get("labels")
        _refuse_labels(node, old_labels, labels if isinstance(labels, dict) else {})


def _refuse_labels(node: str, old: Mapping[str, str] | None, new: Mapping[str, str]) -> None:
    reason = node_label_violation(old, new)
    if reason is not None:
        raise errors.Forbidden(f"{NODE_PREFIX}{node} is forbidden: a node {reason} (NodeRestriction)")



