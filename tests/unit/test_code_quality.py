"""The code-quality contract, checked by the suite: mypy --strict, ruff, and the import-linter layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "mypy"), "--strict", "edgek8s"],
        [str(BIN / "ruff"), "check", "edgek8s", "tests", "bench"],
        [str(BIN / "lint-imports")],
    ],
    ids=["mypy-strict", "ruff", "import-layers"],
)
def test_code_quality(command: list[str]) -> None:
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
