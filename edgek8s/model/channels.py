"""Kubernetes' WebSocket channel protocol for exec and attach (``v4``/``v5.channel.k8s.io``).

Every binary message starts with one channel byte: 0 stdin, 1 stdout, 2 stderr, 3 the final status
(JSON, server to client), 4 terminal resize (``{"Width":W,"Height":H}``), and in v5 only 255 "close":
``[255, N]`` means the sender closed its side of stream N (kubectl sends ``[255, 0]`` at stdin EOF).
v4 and v5 carry the same status object; v5 only adds the close signal.
"""

from __future__ import annotations

import json
from typing import Any

from edgek8s.model import errors

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


class FrameError(ValueError):
    """A message that is not a valid channel frame."""


def encode(channel: int, data: bytes = b"") -> bytes:
    if not 0 <= channel <= 255:
        raise FrameError(f"channel {channel} out of range")
    return bytes((channel,)) + data


def decode(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise FrameError("empty channel frame")
    return message[0], message[1:]


def parse_resize(data: bytes) -> tuple[int, int]:
    """(width, height) of a resize frame."""
    try:
        size = json.loads(data)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FrameError(f"invalid resize frame: {data[:100]!r}") from exc
    if width < 0 or height < 0:
        raise FrameError("negative terminal size")
    return width, height


def exit_status(code: int) -> dict[str, Any]:
    """The channel-3 Status ending an exec: kubectl exits with ``code`` (and prints it when non-zero)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str, *, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    """A channel-3 Status for a failure that is not the command's own: kubectl prints
    ``Error from server (<reason>): <message>`` and exits 1."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def status_frame(status: dict[str, Any]) -> bytes:
    return encode(ERROR, json.dumps(status).encode())


# kubectl 1.32 registers its streams only after the upgrade completes and drops frames for a stream it has not
# registered yet ("Unknown stream id 3, discarding message", then exit 1 without the reason): a status sent
# the moment the connection opens must wait this long. Only failures that happen before anything ran do.
FAILURE_GRACE = 0.25


def failure_frame(error: errors.StatusError) -> bytes:
    """The status frame for an exec/attach that could not start (kubectl prints the error, exits 1)."""
    return status_frame(error_status(error.message, reason=error.reason, code=error.code))


# The API server -> kubelet leg of port-forward (edgek8s's own, one WebSocket per forwarded connection):
# binary messages are the bytes, the text message ``PORT_FORWARD_EOF`` half-closes towards the pod.
PORT_FORWARD_RELAY = "portforward.edgek8s.io"
PORT_FORWARD_EOF = "eof"
