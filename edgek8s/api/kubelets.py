"""Where a pod's kubelet is, and the client the API server reaches kubelets with.

A node's kubelet endpoint is ``https://<address>:<status.daemonEndpoints.kubeletEndpoint.Port>``, the
address being the node's InternalIP (else Hostname, else ExternalIP), as upstream's
``--kubelet-preferred-address-types`` default picks it. The client authenticates with the API servers'
kubelet-client certificate and verifies kubelets against the cluster CA; it lives as long as the app, and
a renewal gives its ``ClientTLS`` (``KUBELET_TLS``) a new context: kubelets check the client certificate
on every request too, so pooled connections must not go on presenting the old one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from edgek8s.api.context import CONFIG, STORE
from edgek8s.client.kubelet import KubeletClient
from edgek8s.client.rest import ClientTLS
from edgek8s.model import errors
from edgek8s.model.resources import lookup
from edgek8s.pki.certs import client_tls_context

KUBELETS = web.AppKey("kubelets", KubeletClient)
KUBELET_TLS = web.AppKey("kubelet_tls", ClientTLS)  # renewals replace its context
_ADDRESS_PREFERENCE = ("InternalIP", "Hostname", "ExternalIP")
NODES = lookup("", "v1", "nodes")
PODS = lookup("", "v1", "pods")


async def kubelet_client_ctx(app: web.Application) -> AsyncIterator[None]:
    api = app[CONFIG].api
    tls = None
    if api.client_ca_file is not None:
        tls = ClientTLS(client_tls_context(api.client_ca_file, api.kubelet_client_cert_file,
                                           api.kubelet_client_key_file))
        app[KUBELET_TLS] = tls
    client = KubeletClient(tls)
    async with client:
        app[KUBELETS] = client
        yield


def kubelet_url(node: dict[str, Any]) -> str:
    name = node.get("metadata", {}).get("name", "")
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise errors.ServiceUnavailable(f'node "{name}" does not report a kubelet endpoint port')
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if a.get("address")}
    host = next((addresses[t] for t in _ADDRESS_PREFERENCE if t in addresses), None)
    if host is None:
        raise errors.ServiceUnavailable(f'node "{name}" has no address to reach its kubelet at')
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a host name
    return f"https://{host}:{port}"


async def get_node(request: web.Request, name: str) -> dict[str, Any]:
    assert NODES is not None
    node: dict[str, Any] = (await request.app[STORE].get(NODES, "", name, consistent=False)).decode()
    return node


async def get_pod(request: web.Request, namespace: str, name: str) -> dict[str, Any]:
    assert PODS is not None
    pod: dict[str, Any] = (await request.app[STORE].get(PODS, namespace, name, consistent=True)).decode()
    return pod


async def pod_kubelet(request: web.Request, pod: dict[str, Any]) -> str:
    """The kubelet URL of the node the pod is bound to; 400 if it is not bound yet."""
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f'pod {pod["metadata"]["name"]} does not have a host assigned')
    try:
        return kubelet_url(await get_node(request, node_name))
    except errors.NotFound:
        raise errors.ServiceUnavailable(f'the node "{node_name}" of pod {pod["metadata"]["name"]} is gone') from None
