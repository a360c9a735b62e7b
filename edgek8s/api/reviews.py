"""SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview: "may I?", "what may I?" and
"who am I?", answered, never stored.

``kubectl auth can-i VERB RESOURCE`` creates a ``SelfSubjectAccessReview`` (authorization.k8s.io/v1);
the answer comes from the same pure ``authz.decide`` that guards every request, so it is the truth for
the caller's certificate: RBAC objects are stored but not consulted (docs/kinds.md). ``kubectl auth
whoami`` creates a ``SelfSubjectReview`` (authentication.k8s.io/v1) and gets the authenticated user.
``kubectl auth can-i --list`` creates a ``SelfSubjectRulesReview``: everything for ``system:masters``; for a
node the rules its table grants unconditionally, marked incomplete (the rest depends on its pods).
Every authenticated identity may create both (upstream's ``system:basic-user`` role); the body may be
protobuf. A malformed review is a 400 or 422 and, like every review, changes nothing.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from edgek8s.api.authn import USER, User
from edgek8s.api.authz import MASTERS, Attributes, StoreGraph, decide, node_name
from edgek8s.api.context import STORE, json_response, read_json
from edgek8s.model import errors

AUTHENTICATED = "system:authenticated"
_ACCESS_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
_WHOAMI_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
_RULES_PATH = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
_READ = ["get", "list", "watch"]
# What authz.decide grants any certificate, and a node whatever pods it runs (tests/unit/test_kinds.py
# checks each rule against decide).
BASIC_RULES: list[dict[str, list[str]]] = [
    {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
     "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
    {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
]
NODE_RULES: list[dict[str, list[str]]] = [
    {"verbs": _READ, "apiGroups": [""], "resources": ["nodes", "services", "endpoints"]},
    {"verbs": _READ, "apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"]},
    {"verbs": ["create", "update", "patch"], "apiGroups": ["", "events.k8s.io"], "resources": ["events"]},
]
NON_RESOURCE_RULES = [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
                                                             "/livez", "/openapi/*", "/readyz", "/version"]}]


def _user(request: web.Request) -> User:
    user: User | None = request.get(USER)
    if user is None:
        raise errors.Unauthorized("Unauthorized")
    return user


def _review_body(body: Any, api_version: str, kind: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise errors.BadRequest("the request body must be a JSON object")
    given = (body.get("apiVersion", api_version), body.get("kind", kind))
    if given != (api_version, kind):
        raise errors.BadRequest(f"the body is a {given[1]} in {given[0]}, not a {kind} in {api_version}")
    return body


def review_attributes(spec: Any) -> Attributes:
    """The authorizer's ``Attributes`` for a review's spec; 422 unless exactly one kind of attributes."""
    spec = spec if isinstance(spec, dict) else {}
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None) or not isinstance(resource or non_resource, dict):
        raise errors.invalid("SelfSubjectAccessReview", "authorization.k8s.io", "", [errors.StatusCause(
            field="spec.resourceAttributes", reason="FieldValueInvalid",
            message='Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be '
                    "specified")])
    if non_resource is not None:
        return Attributes(verb=str(non_resource.get("verb", "")).upper(), path=str(non_resource.get("path", "")))
    selector = resource.get("fieldSelector")
    return Attributes(
        verb=str(resource.get("verb", "")), path="", group=str(resource.get("group", "")),
        plural=str(resource.get("resource", "")), namespace=str(resource.get("namespace", "")),
        name=str(resource.get("name", "")), subresource=str(resource.get("subresource", "")),
        field_selector=str(selector.get("rawSelector", "")) if isinstance(selector, dict) else "",
    )


async def access_review(request: web.Request) -> web.Response:
    user = _user(request)
    body = _review_body(await read_json(request), "authorization.k8s.io/v1", "SelfSubjectAccessReview")
    reason = decide(user, review_attributes(body.get("spec")), StoreGraph(request.app[STORE]))
    status: dict[str, Any] = {"allowed": reason is None}
    if reason is not None:
        status.update(denied=True, reason=reason)
    return json_response({"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                          "metadata": {"creationTimestamp": None}, "spec": body.get("spec"), "status": status},
                         status=201)


async def self_review(request: web.Request) -> web.Response:
    user = _user(request)
    _review_body(await read_json(request), "authentication.k8s.io/v1", "SelfSubjectReview")
    groups = list(user.groups) + ([AUTHENTICATED] if AUTHENTICATED not in user.groups else [])
    return json_response({"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                          "metadata": {"creationTimestamp": None},
                          "status": {"userInfo": {"username": user.name, "groups": groups}}}, status=201)


async def rules_review(request: web.Request) -> web.Response:
    user = _user(request)
    body = _review_body(await read_json(request), "authorization.k8s.io/v1", "SelfSubjectRulesReview")
    status: dict[str, Any]
    if MASTERS in user.groups:
        status = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}
    elif node_name(user) is not None:
        status = {"resourceRules": NODE_RULES + BASIC_RULES, "nonResourceRules": NON_RESOURCE_RULES,
                  "incomplete": True,
                  "evaluationError": "access to pods, leases, secrets, configmaps and persistentvolumeclaims "
                                     "depends on the pods bound to the node"}
    else:
        status = {"resourceRules": BASIC_RULES, "nonResourceRules": NON_RESOURCE_RULES, "incomplete": False}
    return json_response({"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
                          "metadata": {"creationTimestamp": None}, "spec": body.get("spec") or {},
                          "status": status}, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_post(_RULES_PATH, rules_review)
    app.router.add_post(_ACCESS_PATH, access_review)
    app.router.add_post(_WHOAMI_PATH, self_review)
