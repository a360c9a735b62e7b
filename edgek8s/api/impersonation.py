"""User impersonation (``kubectl --as USER --as-group GROUP``), for ``system:masters`` only.

Called by the authorizer before it decides: a request carrying ``Impersonate-User`` (and any
``Impersonate-Group``) from an admin is then authorized and served as that user, as kube-apiserver does;
``kubectl auth can-i VERB RES --as system:node:n1 --as-group system:nodes`` thus answers for the node. An
admin gains nothing by it (it may do anything already); anyone else asking is refused with upstream's 403
and nothing is done. ``Impersonate-Uid`` and ``Impersonate-Extra-*`` are accepted and ignored (edgek8s's
authorizer reads neither). Without ``Impersonate-User`` the other headers are a 400, and so is
impersonation on edgek8s's own ``/edgek8s/`` endpoints (certificate renewal among them).
"""

from __future__ import annotations

from aiohttp import web

from edgek8s.api.authn import USER, User
from edgek8s.model import errors

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"


def wants_impersonation(request: web.Request) -> bool:
    headers = request.headers
    return IMPERSONATE_USER in headers or IMPERSONATE_GROUP in headers


def impersonate(request: web.Request, user: User, *, privileged: bool) -> User:
    """The user the request is to be served as (also stored as the request's USER); raises 403/400."""
    name = request.headers.get(IMPERSONATE_USER)
    groups = tuple(request.headers.getall(IMPERSONATE_GROUP, ()))
    if name is None:
        raise errors.BadRequest(f"requested groups {list(groups)} without impersonating a user")
    if not privileged:
        raise errors.Forbidden(f'users "{name}" is forbidden: User "{user.name}" cannot impersonate resource "users" '
                               'in API group "" at the cluster scope', kind="users", name=name)
    if not name:
        raise errors.BadRequest("the Impersonate-User header is empty")
    if request.path.startswith("/edgek8s/"):
        # Never on edgek8s's own endpoints: /edgek8s/v1/renew would mint a certificate for the impersonated user.
        raise errors.BadRequest("impersonation is not supported on edgek8s's own endpoints")
    impersonated = User(name, groups)
    request[USER] = impersonated
    return impersonated
