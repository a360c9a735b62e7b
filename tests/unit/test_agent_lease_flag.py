"""``edgek8s agent --node-lease-duration-seconds``: upstream's kubelet nodeLeaseDurationSeconds, renewed every
quarter of it; a bad value is refused with a clear error."""

from __future__ import annotations

import argparse

import pytest

from edgek8s.cli.main import _add_agent_parser, build_agent_config
from edgek8s.config import ConfigError


def agent_args(*flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _add_agent_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["agent", "--name", "pi-1", "--server", "http://127.0.0.1:6443", *flags])


@pytest.mark.parametrize(
    ("flags", "duration", "renew"),
    [([], 40, 10.0), (["--node-lease-duration-seconds", "80"], 80, 20.0),
     (["--node-lease-duration-seconds", "10"], 10, 2.5)],
)
def test_the_renew_interval_is_a_quarter_of_the_lease_duration(
    flags: list[str], duration: int, renew: float
) -> None:
    config = build_agent_config(agent_args(*flags))
    assert (config.lease_duration_seconds, config.lease_renew_interval) == (duration, renew)


def test_the_environment_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEK8S_NODE_LEASE_DURATION_SECONDS", "120")
    assert build_agent_config(agent_args()).lease_renew_interval == 30.0


@pytest.mark.parametrize("value", ["0", "-40"])
def test_a_non_positive_duration_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="--node-lease-duration-seconds must be positive"):
        build_agent_config(agent_args("--node-lease-duration-seconds", value))
