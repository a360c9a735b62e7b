"""Node certificate revocation: deleting a Node revokes every certificate issued to it before then.

The record is the ConfigMap ``kube-system/edgek8s-node-revocations``: node name -> RFC 3339 time of the
deletion. A certificate for ``system:node:<name>`` whose issue time (notBefore plus the signer's
backdate) is not after that time is refused by authentication. The leader prunes entries whose
certificates have all expired anyway (controllers/revocations.py). A node that joins again afterwards gets
a new certificate and is accepted. Only an admin deletes Nodes; the API records the revocation before
it answers the DELETE, so a node cannot use its certificate once the deletion was acknowledged.
"""

from __future__ import annotations

import datetime
from typing import Any

from edgek8s.model.resources import by_id, resource_id
from edgek8s.model.revocations import NAME, NAMESPACE, revocation_times
from edgek8s.pki.certs import BACKDATE, ClientIdentity
from edgek8s.pki.tokens import rfc3339
from edgek8s.store.raftstore import RaftStore

CONFIGMAPS = resource_id("", "configmaps")
NODE_PREFIX = "system:node:"


class Revocations:
    """Reads the revocation record from this replica, decoding it again only when it changed."""

    def __init__(self, store: RaftStore) -> None:
        self._store = store
        self._seen: tuple[int, dict[str, float]] = (-1, {})

    def _record(self) -> dict[str, float]:
        stored, _ = self._store.state.get(CONFIGMAPS, NAMESPACE, NAME)
        if stored is None:
            return {}
        if stored.rv != self._seen[0]:
            self._seen = (stored.rv, revocation_times(stored.decode().get("data") or {}))
        return self._seen[1]

    def revoked_at(self, node: str) -> float | None:
        return self._record().get(node)

    def revoked(self, identity: ClientIdentity) -> bool:
        if not identity.user.startswith(NODE_PREFIX):
            return False
        revoked_at = self._record().get(identity.user.removeprefix(NODE_PREFIX))
        if revoked_at is None:
            return False
        return identity.not_before + BACKDATE.total_seconds() <= revoked_at


async def revoke_nodes(store: RaftStore, nodes: list[str]) -> None:
    """Record that the ``nodes``' certificates issued until now are revoked (a linearizable read, then a
    write with that resourceVersion as precondition, retried on conflicts)."""
    from edgek8s.model import errors

    if not nodes:
        return
    configmaps = by_id(CONFIGMAPS)
    now = rfc3339(datetime.datetime.now(datetime.UTC))
    for _ in range(20):
        try:
            try:
                body: dict[str, Any] = (await store.get(configmaps, NAMESPACE, NAME, consistent=True)).decode()
            except errors.NotFound:
                body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NAMESPACE},
                        "data": {node: now for node in nodes}}
                await store.create(configmaps, body)
                return
            body.setdefault("data", {}).update({node: now for node in nodes})
            await store.update(configmaps, body, expect_rv=int(body["metadata"]["resourceVersion"]))
            return
        except (errors.Conflict, errors.AlreadyExists):
            continue
    raise errors.Conflict(f"could not record the revocation of {', '.join(nodes)}")
