"""``ContainerStreams`` over Podman's REST API (libpod v4), for the kubelet's streaming endpoint.

Containers are found by the labels the agent puts on them (kubelet/runtime.py): the pod uid and the
container name. A restart is a new Podman container with the next attempt number: the highest attempt
is the current container, the one before it ``previous`` (what ``kubectl logs --previous`` shows).

Exec is Podman's hijacked connection: create an exec instance, start it with ``Upgrade: tcp``, then
stdin goes to the socket, stdout/stderr come back multiplexed (raw with a TTY), and the exit code is
read from the instance once its streams close.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from edgek8s.kubelet.netns import open_connection_in
from edgek8s.kubelet.podman_http import PodmanHttp, PodmanResponse, demultiplex, demultiplex_joined
from edgek8s.kubelet.runtime import (
    LABEL_ATTEMPT,
    LABEL_CONTAINER_NAME,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
)
from edgek8s.kubelet.streams import (
    STDOUT,
    ContainerRef,
    ExecOptions,
    LogOptions,
    NodeUsage,
    PodRef,
)
from edgek8s.kubelet.usage import ContainerSample, UsageMeter
from edgek8s.model import errors

_EXIT_POLL = 0.01
_EXIT_WAIT = 5.0
_DRAIN = 0.5


class PodmanStreamSession:
    """An exec or attach session on a hijacked connection. ``kind`` is "exec" or "containers": the
    paths ``/<kind>/<id>/resize`` and ``/<kind>/<id>/json`` resize it and tell how it ended."""

    def __init__(self, http: PodmanHttp, response: PodmanResponse, *, kind: str, object_id: str, tty: bool) -> None:
        self._http = http
        self._response = response
        self._kind = kind
        self._id = object_id
        self._tty = tty

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        if self._tty:
            async for chunk in self._response.body_chunks():
                yield STDOUT, chunk
            return
        async for frame in demultiplex(self._response.body_chunks()):
            yield frame

    async def write_stdin(self, data: bytes) -> None:
        self._response.writer.write(data)
        await self._response.writer.drain()

    async def close_stdin(self) -> None:
        if self._response.writer.can_write_eof():
            self._response.writer.write_eof()

    async def resize(self, width: int, height: int) -> None:
        if not self._tty:
            return  # nothing to resize; upstream ignores it too
        response = await self._http.request("POST", f"/{self._kind}/{self._id}/resize",
                                            params={"h": str(height), "w": str(width)})
        response.close()

    async def exit_code(self) -> int:
        """The exit code once the process has ended (its streams close a moment before Podman records it)."""
        deadline = time.monotonic() + _EXIT_WAIT
        while True:
            response = await self._http.request("GET", f"/{self._kind}/{self._id}/json")
            await response.raise_for_status(f"inspect {self._kind}")
            info = await response.json()
            response.close()
            state = info.get("State") if self._kind == "containers" else info
            if not state.get("Running") or time.monotonic() > deadline:
                return int(state.get("ExitCode") or 0)
            await asyncio.sleep(_EXIT_POLL)

    async def close(self) -> None:
        self._response.close()


class PodmanStreams:
    def __init__(self, socket_path: Path, *, min_usage_window: float = 0.5) -> None:
        self._http = PodmanHttp(socket_path)
        self._meter = UsageMeter(self._sample, min_window=min_usage_window)

    async def _containers(self, labels: list[str], *, all_states: bool = True) -> list[dict[str, Any]]:
        filters = json.dumps({"label": labels})
        response = await self._http.request(
            "GET", "/containers/json", params={"all": "true" if all_states else "false", "filters": filters})
        await response.raise_for_status("list containers")
        found: list[dict[str, Any]] = await response.json() or []
        response.close()
        return sorted(found, key=_newest_first, reverse=True)

    async def _container(self, ref: ContainerRef, *, previous: bool = False) -> dict[str, Any]:
        found = await self._containers([f"{LABEL_POD_UID}={ref.pod.uid}", f"{LABEL_CONTAINER_NAME}={ref.container}"])
        index = 1 if previous else 0
        if len(found) <= index:
            what = "previous terminated container" if previous else "container"
            raise errors.NotFound(f'{what} "{ref.container}" in pod "{ref.pod.name}" not found')
        return found[index]

    async def logs(self, ref: ContainerRef, options: LogOptions) -> AsyncIterator[bytes]:
        container_id = (await self._container(ref, previous=options.previous))["Id"]
        params = {"stdout": "true", "stderr": "true"}
        if options.follow:
            params["follow"] = "true"
        if options.timestamps:
            params["timestamps"] = "true"
        if options.tail_lines is not None:
            params["tail"] = str(options.tail_lines)
        if options.since_seconds is not None:
            params["since"] = str(int(time.time()) - options.since_seconds)
        elif options.since_time:
            params["since"] = str(int(_parse_rfc3339(options.since_time)))
        response = await self._http.request("GET", f"/containers/{container_id}/logs", params=params)
        exited = asyncio.create_task(self._wait_exited(container_id)) if options.follow else None
        try:
            await response.raise_for_status("container logs")
            budget = options.limit_bytes
            async for payload in _until_exit(demultiplex_joined(response.body_chunks()), exited):
                if budget is not None:
                    payload = payload[:budget]
                    budget -= len(payload)
                yield payload
                if budget is not None and budget <= 0:
                    return
        finally:
            response.close()
            if exited is not None:
                exited.cancel()
                with contextlib.suppress(asyncio.CancelledError, errors.StatusError):
                    await exited

    async def _wait_exited(self, container_id: str) -> None:
        """Returns once the container has stopped (at once if it has)."""
        response = await self._http.request(
            "POST", f"/containers/{container_id}/wait?condition=stopped&condition=exited")
        try:
            await response.read()
        finally:
            response.close()

    async def exec(self, ref: ContainerRef, options: ExecOptions) -> PodmanStreamSession:
        container = await self._container(ref)
        if container.get("State") != "running":
            raise errors.BadRequest(f'container "{ref.container}" in pod "{ref.pod.name}" is not running '
                                    f'(state: {container.get("State")}); cannot exec into it')
        response = await self._http.request("POST", f"/containers/{container['Id']}/exec", json_body={
            "AttachStdin": options.stdin, "AttachStdout": options.stdout, "AttachStderr": options.stderr,
            "Tty": options.tty, "Cmd": list(options.command)})
        await response.raise_for_status("create exec")
        exec_id = str((await response.json())["Id"])
        response.close()
        started = await self._http.request("POST", f"/exec/{exec_id}/start",
                                           json_body={"Detach": False, "Tty": options.tty}, upgrade=True)
        await started.raise_for_status("start exec")
        return PodmanStreamSession(self._http, started, kind="exec", object_id=exec_id, tty=options.tty)

    async def attach(self, ref: ContainerRef, options: ExecOptions) -> PodmanStreamSession:
        container = await self._container(ref)
        if container.get("State") != "running":
            raise errors.BadRequest(f'container "{ref.container}" in pod "{ref.pod.name}" is not running '
                                    f'(state: {container.get("State")}); cannot attach to it')
        params = {"stream": "true", "logs": "false", "stdin": str(options.stdin).lower(),
                  "stdout": str(options.stdout).lower(), "stderr": str(options.stderr).lower()}
        response = await self._http.request("POST", f"/containers/{container['Id']}/attach", params=params,
                                            upgrade=True)
        await response.raise_for_status("attach")
        return PodmanStreamSession(self._http, response, kind="containers", object_id=str(container["Id"]),
                                   tty=options.tty)

    async def port_forward(self, pod: PodRef, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        running = await self._containers([f"{LABEL_POD_UID}={pod.uid}"], all_states=False)
        if not running:
            raise errors.BadRequest(f'pod "{pod.name}" has no running container to forward port {port} to')
        response = await self._http.request("GET", f"/containers/{running[0]['Id']}/json")
        await response.raise_for_status("inspect container")
        pid = int((await response.json())["State"]["Pid"])
        response.close()
        return await open_connection_in(pid, port)

    async def _sample(self) -> list[ContainerSample]:
        running = await self._containers([LABEL_POD_UID, LABEL_CONTAINER_NAME], all_states=False)
        if not running:
            return []
        params = [("stream", "false"), *(("containers", str(c["Id"])) for c in running)]
        response = await self._http.request("GET", "/containers/stats?" + "&".join(f"{k}={v}" for k, v in params))
        await response.raise_for_status("container stats")
        stats = {s["ContainerID"]: s for s in ((await response.json()) or {}).get("Stats") or []}
        response.close()
        samples = []
        for container in running:
            labels = container.get("Labels") or {}
            stat = stats.get(container["Id"])
            if stat is None:
                continue
            pod = PodRef(namespace=labels.get(LABEL_POD_NAMESPACE, ""), name=labels.get(LABEL_POD_NAME, ""),
                         uid=labels[LABEL_POD_UID])
            samples.append(ContainerSample(pod=pod, container=labels.get(LABEL_CONTAINER_NAME, ""),
                                           key=str(container["Id"]), cpu_ns=int(stat.get("CPUNano") or 0),
                                           memory_bytes=int(stat.get("MemUsage") or 0)))
        return samples

    async def usage(self) -> NodeUsage:
        return await self._meter.usage()

    async def load_image(self, archive: AsyncIterator[bytes]) -> list[str]:
        response = await self._http.request("POST", "/images/load", body=archive, content_type="application/x-tar")
        try:
            await response.raise_for_status("load image")
            loaded = await response.json()
        finally:
            response.close()
        return [str(name) for name in (loaded or {}).get("Names") or []]


async def _until_exit(chunks: AsyncIterator[bytes], exited: asyncio.Task[None] | None) -> AsyncIterator[bytes]:
    """``chunks`` until it ends, or, once ``exited`` is done, until it has been quiet for ``_DRAIN``:
    Podman's follow goes on after the container exits; upstream's ends, and kubectl logs -f with it."""
    if exited is None:
        async for data in chunks:
            yield data
        return
    iterator = aiter(chunks)
    chunk: bytes | None
    following: asyncio.Future[bytes | None] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(iterator, None))
            if not exited.done():
                await asyncio.wait((following, exited), return_when=asyncio.FIRST_COMPLETED)
            if following.done():
                chunk = following.result()
            else:
                try:
                    chunk = await asyncio.wait_for(following, _DRAIN)
                except TimeoutError:
                    return
            if chunk is None:
                return
            yield chunk
    finally:
        if following is not None and not following.done():  # the reader went away mid-read
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError, errors.StatusError, OSError):
                await following


def _newest_first(container: dict[str, Any]) -> tuple[int, str, str]:
    """Sort key: the agent's attempt label, then libpod's ``Created`` (RFC 3339, UTC, nanoseconds with
    trailing zeros trimmed)."""
    attempt = str((container.get("Labels") or {}).get(LABEL_ATTEMPT, ""))
    created = str(container.get("Created") or "")
    whole, _, fraction = created.rstrip("Z").partition(".")
    return int(attempt) if attempt.isdigit() else -1, whole, fraction.ljust(9, "0")


def _parse_rfc3339(value: str) -> float:
    with contextlib.suppress(ValueError):
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise errors.BadRequest(f"sinceTime: invalid RFC 3339 time {value!r}")
