"""NodeRestriction label limits over real TLS: a node's create, update, patch and apply of its own Node
may only add, change or remove kubelet labels; anything else is a 403 that changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from tests.component.test_join_api import Env, env, join_worker, make_token, node_tls

__all__ = ["env"]

NODES = "/api/v1/nodes"


async def test_a_node_sets_only_kubelet_labels_on_its_own_node(env: Env, tmp_path: Path) -> None:
    layout = await join_worker(env, await make_token(env), "pi-l", tmp_path)
    async with RestClient(env.url, ssl_context=node_tls(layout)) as node, \
            RestClient(env.url, ssl_context=env.admin) as admin:
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-l", "labels": {
            "kubernetes.io/hostname": "pi-l", "node-role.kubernetes.io/master": ""}}}
        with pytest.raises(errors.Forbidden, match="not allowed to set the following labels: node-role"):
            await node.create(NODES, body)
        with pytest.raises(errors.NotFound):
            await admin.get(f"{NODES}/pi-l")
        body["metadata"]["labels"] = {"kubernetes.io/hostname": "pi-l", "rack": "r1",
                                      "topology.kubernetes.io/zone": "z1"}
        await node.create(NODES, body)

        # An admin labels the node for isolation; the node can write the label back unchanged...
        admin_node = await admin.get(f"{NODES}/pi-l")
        admin_node["metadata"]["labels"]["node-restriction.kubernetes.io/pool"] = "secure"
        await admin.replace(f"{NODES}/pi-l", admin_node)
        own = await node.get(f"{NODES}/pi-l")
        own["metadata"]["labels"]["rack"] = "r2"
        own = await node.replace(f"{NODES}/pi-l", own)
        assert own["metadata"]["labels"]["node-restriction.kubernetes.io/pool"] == "secure"

        # ...but not change or drop it, nor add another restricted one, by PUT, status PUT, patch or apply.
        before = await admin.get(f"{NODES}/pi-l")
        changed = json.loads(json.dumps(before))
        changed["metadata"]["labels"]["node-restriction.kubernetes.io/pool"] = "open"
        with pytest.raises(errors.Forbidden, match="not allowed to modify labels: node-restriction"):
            await node.replace(f"{NODES}/pi-l", changed)
        dropped = json.loads(json.dumps(before))
        del dropped["metadata"]["labels"]["node-restriction.kubernetes.io/pool"]
        with pytest.raises(errors.Forbidden, match=re.escape("node-restriction.kubernetes.io/pool")):
            await node.replace(f"{NODES}/pi-l/status", dropped)
        with pytest.raises(errors.Forbidden, match=re.escape("node-role.kubernetes.io/worker")):
            await node.request("PATCH", f"{NODES}/pi-l", body={"metadata": {"labels": {
                "node-role.kubernetes.io/worker": ""}}}, content_type="application/merge-patch+json")
        with pytest.raises(errors.Forbidden, match=re.escape("kubernetes.io/role")):
            await node.request("PATCH", f"{NODES}/pi-l", params={"fieldManager": "kubelet"}, body={
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-l", "labels": {
                    "kubernetes.io/role": "x"}}}, content_type="application/apply-patch+yaml")
        after = await admin.get(f"{NODES}/pi-l")
        assert after["metadata"]["labels"] == before["metadata"]["labels"]
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

        # Allowed labels go through every write path.
        await node.request("PATCH", f"{NODES}/pi-l", body={"metadata": {"labels": {
            "node.kubernetes.io/exclude-from-external-load-balancers": "", "example.com/gpu": "no"}}},
            content_type="application/merge-patch+json")
        labels = (await admin.get(f"{NODES}/pi-l"))["metadata"]["labels"]
        assert labels["example.com/gpu"] == "no" and labels["node-restriction.kubernetes.io/pool"] == "secure"
        # The admin is not limited.
        await admin.request("PATCH", f"{NODES}/pi-l", body={"metadata": {"labels": {
            "node-role.kubernetes.io/worker": ""}}}, content_type="application/merge-patch+json")
