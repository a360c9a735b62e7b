"""e2e fixtures, the `compat` marker, and docs/compatibility.md generated from the compat tests' results.

Every test marked `@pytest.mark.compat(command, flags)` is one row of the compatibility table. When at least
one of them ran in a session, docs/compatibility.md is rewritten: rows that ran get ✅ (passed) or ❌ (failed
or errored, setup and teardown included); rows that did not run this time (deselected, skipped, another file)
keep the status and date parsed from the previous file, so a partial run never erases the others.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.kubectl_support import edgek8s_cluster, kubectl, ns  # noqa: F401  (fixtures for the e2e tests)
from tests.e2e.streams_support import worker  # noqa: F401  (fixture for the kubectl stream tests)

COMPAT_DOC = Path("docs") / "compatibility.md"
PASS, FAIL, NOT_RUN = "✅", "❌", "not run"
_COLUMNS = ("Command", "Flags", "Status", "Test", "Last run")


@dataclasses.dataclass(frozen=True)
class CompatRow:
    command: str
    flags: str
    status: str  # PASS, FAIL or NOT_RUN
    test: str  # the pytest node id
    last_run: str  # ISO date of the run that set the status, "" if never run


@dataclasses.dataclass
class _Session:
    markers: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # node id -> (command, flags)
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)  # node id -> "passed"/"failed"/"skipped"
    written: Path | None = None


_session = _Session()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "compat(command, flags=''): one row of docs/compatibility.md, e.g. compat('kubectl get', '-o yaml')",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    global _session
    _session = _Session()


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection: a deselected row is still a row
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("compat")
        if marker is not None:
            command = str(marker.args[0] if marker.args else marker.kwargs["command"])
            flags = str(marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("flags", ""))
            _session.markers[item.nodeid] = (command, flags)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _session.markers:
        return
    previous = _session.outcomes.get(report.nodeid)
    if report.failed:
        _session.outcomes[report.nodeid] = "failed"
    elif report.skipped and previous is None:
        _session.outcomes[report.nodeid] = "skipped"
    elif report.passed and report.when == "call" and previous is None:
        _session.outcomes[report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller writes the file
        return
    ran = {nodeid: outcome for nodeid, outcome in _session.outcomes.items() if outcome in ("passed", "failed")}
    if not ran:
        return
    root = session.config.rootpath
    path = root / COMPAT_DOC
    previous = parse_compat_doc(path.read_text(encoding="utf-8")) if path.exists() else []
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    rows = merge_rows(previous, _session.markers, ran, today, lambda test: _test_exists(root, test))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_compat_doc(rows, today), encoding="utf-8")
    _session.written = path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _session.written is not None:
        rows = parse_compat_doc(_session.written.read_text(encoding="utf-8"))
        counts = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, NOT_RUN)}
        terminalreporter.write_line(
            f"{COMPAT_DOC}: {counts[PASS]} {PASS}  {counts[FAIL]} {FAIL}  {counts[NOT_RUN]} not run"
        )


# --- the document --------------------------------------------------------------------------------------


def merge_rows(
    previous: list[CompatRow],
    markers: dict[str, tuple[str, str]],
    ran: dict[str, str],
    today: str,
    still_exists: Callable[[str], bool],
) -> list[CompatRow]:
    """This session's results over the previous file's rows; rows of tests that no longer exist are dropped."""
    rows = {row.test: row for row in previous if row.test in markers or still_exists(row.test)}
    for test, (command, flags) in markers.items():
        if test in ran:
            rows[test] = CompatRow(command, flags, PASS if ran[test] == "passed" else FAIL, test, today)
        elif test in rows:
            rows[test] = dataclasses.replace(rows[test], command=command, flags=flags)
        else:
            rows[test] = CompatRow(command, flags, NOT_RUN, test, "")
    return sorted(rows.values(), key=lambda r: (r.command, r.flags, r.test))


def _test_exists(root: Path, test: str) -> bool:
    file, _, rest = test.partition("::")
    function = rest.rsplit("::", 1)[-1].split("[", 1)[0]
    path = root / file
    return bool(function) and path.is_file() and f"def {function}(" in path.read_text(encoding="utf-8")


def _cell(text: str, code: bool = True) -> str:
    if not text:
        return ""
    escaped = text.replace("|", "\\|")
    return f"`{escaped}`" if code else escaped


def _uncell(cell: str) -> str:
    cell = cell.strip()
    if len(cell) >= 2 and cell.startswith("`") and cell.endswith("`"):
        cell = cell[1:-1]
    return cell.replace("\\|", "|")


def render_compat_doc(rows: list[CompatRow], today: str) -> str:
    counts = {s: sum(r.status == s for r in rows) for s in (PASS, FAIL, NOT_RUN)}
    lines = [
        "# Compatibility with kubectl and the Kubernetes Python client",
        "",
        "<!-- Generated by tests/e2e/conftest.py: do not edit by hand, run the tests. -->",
        f"Generated by running the e2e tests (`scripts/test.sh tests/e2e`); last written on {today}.",
        "Each row is one test marked `@pytest.mark.compat(command, flags)` that drives the real kubectl (v1.32)",
        "or the official Python client against a local 3-master cluster and checks what upstream",
        "kube-apiserver would make them print or return.",
        f"{PASS} passed, {FAIL} failed, *{NOT_RUN}* never ran. A partial run only updates the rows it ran; the",
        "others keep the status and date of their last run.",
        "",
        f"**{len(rows)} rows: {counts[PASS]} {PASS}, {counts[FAIL]} {FAIL}, {counts[NOT_RUN]} {NOT_RUN}.**",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join("---" for _ in _COLUMNS) + "|",
    ]
    for row in rows:
        cells = [_cell(row.command), _cell(row.flags), row.status, _cell(row.test), row.last_run]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_compat_doc(text: str) -> list[CompatRow]:
    rows = []
    in_table = False
    for line in text.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [_uncell(c) for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if tuple(cells) == _COLUMNS:
            in_table = True
            continue
        if not in_table or len(cells) != len(_COLUMNS) or set(line) <= set("|-: "):
            continue
        command, flags, status, test, last_run = cells
        status = status if status in (PASS, FAIL) else NOT_RUN
        rows.append(CompatRow(command, flags, status, test, last_run))
    return rows
