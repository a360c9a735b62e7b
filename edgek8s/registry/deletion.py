"""Delete requests: DeleteOptions.gracePeriodSeconds and the grace a pod deletion grants its kubelet.

Upstream's pod strategy (``CheckGracefulDelete``): the request's ``gracePeriodSeconds`` wins, else the
pod's ``spec.terminationGracePeriodSeconds``, else 30; a negative request means 1 s. Whether the pod
is bound or already finished is decided by ``apply`` on the state it holds (``store.graceful``), so
this only says what the requester asked for. Only pods delete gracefully; other kinds get None.
"""

from __future__ import annotations

import datetime
from typing import Any

from edgek8s.model import errors
from edgek8s.model.resources import ResourceType
from edgek8s.model.timestamps import format_time

DEFAULT_GRACE_SECONDS = 30
MAX_GRACE_SECONDS = 10 * 365 * 24 * 3600  # a deadline must stay a date (and keep apply's arithmetic in range)


def parse_grace_period(value: Any) -> int | None:
    """``gracePeriodSeconds`` from DeleteOptions or the query (a string there); None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise errors.BadRequest(f"gracePeriodSeconds: Invalid value: {value!r}: must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"gracePeriodSeconds: Invalid value: {value!r}: must be an integer") from None


def deletion_grace(
    rtype: ResourceType, obj: dict[str, Any] | None, requested: int | None, *, now: datetime.datetime | None = None
) -> tuple[int, str] | None:
    """``(grace, deadline)`` for the store's delete command, or None for kinds that delete at once."""
    if rtype.plural != "pods" or rtype.group != "":
        return None
    if requested is None:
        spec_grace = ((obj or {}).get("spec") or {}).get("terminationGracePeriodSeconds")
        requested = spec_grace if isinstance(spec_grace, int) and not isinstance(spec_grace, bool) \
            else DEFAULT_GRACE_SECONDS
    grace = 1 if requested < 0 else min(requested, MAX_GRACE_SECONDS)
    deadline = (now or datetime.datetime.now(datetime.UTC)) + datetime.timedelta(seconds=grace)
    if deadline.microsecond:  # the wire keeps whole seconds: round up, so the kubelet gets the whole grace
        deadline += datetime.timedelta(seconds=1)
    return grace, format_time(deadline)
