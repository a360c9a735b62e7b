"""Images built on this machine, without a registry, from the Containerfiles under ``images/``.

Every image starts FROM scratch with Debian's statically linked busybox (package ``busybox-static``),
copied into a temporary build context next to the image's own files. ``build_image`` runs ``podman
build`` with the environment of the Podman that should hold the image (an agent's storage);
``save_image`` writes an archive that any agent can load (``ContainerRuntime.import_image``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from edgek8s.config import ConfigError

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
BUSYBOX = Path("/bin/busybox")
TEST_IMAGE = "localhost/edgek8s/busybox:1"
SAMPLE_APP_IMAGE = "localhost/edgek8s/sample-app:1"
IMAGES = {TEST_IMAGE: "busybox", SAMPLE_APP_IMAGE: "sample-app"}


def _check_busybox() -> None:
    try:
        with BUSYBOX.open("rb") as handle:
            head = handle.read(65536)
    except OSError:
        head = b""
    # A dynamically linked ELF names its loader (PT_INTERP) near the start; the static build has none.
    if not head.startswith(b"\x7fELF") or b"/ld-linux" in head:
        raise ConfigError("images need Debian's static busybox: `apt-get install busybox-static`")


def build_image(tag: str, *, env: Mapping[str, str] | None = None, podman: str = "podman") -> None:
    """``podman build`` of ``images/<name>`` as ``tag`` (one of ``IMAGES``), into the storage ``env`` names."""
    source = IMAGES_DIR / IMAGES[tag]
    if not (source / "Containerfile").is_file():
        raise ConfigError(f"no Containerfile in {source}: run edgek8s from its source checkout")
    if shutil.which(podman) is None:
        raise ConfigError("podman not found: `apt-get install podman runc catatonit` (or scripts/install.sh)")
    _check_busybox()
    with tempfile.TemporaryDirectory(prefix="edgek8s-image-") as context:
        shutil.copytree(source, context, dirs_exist_ok=True)
        shutil.copy2(BUSYBOX, Path(context) / "busybox")
        result = subprocess.run(
            [podman, "build", "--quiet", "--tag", tag, "--file", str(Path(context) / "Containerfile"), context],
            env=dict(env) if env is not None else dict(os.environ), capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        raise ConfigError(f"podman build {tag} failed: {result.stderr.strip()[-2000:]}")


def save_image(tag: str, archive: Path, *, env: Mapping[str, str] | None = None, podman: str = "podman") -> None:
    archive.unlink(missing_ok=True)
    result = subprocess.run(
        [podman, "save", "--quiet", "--format", "oci-archive", "--output", str(archive), tag],
        env=dict(env) if env is not None else dict(os.environ), capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise ConfigError(f"podman save {tag} failed: {result.stderr.strip()[-2000:]}")


def build_archive(tag: str, archive: Path) -> Path:
    """Build ``tag`` in a scratch Podman storage beside ``archive`` and save it there (for ``import_image``)."""
    import asyncio

    from edgek8s.config import PodmanConfig
    from edgek8s.kubelet.podman_host import remove_everything, resolve, write_config

    host = resolve(PodmanConfig(), archive.parent / f".build-{archive.stem}")
    write_config(host)
    try:
        build_image(tag, env=host.env())
        save_image(tag, archive, env=host.env())
    finally:
        asyncio.run(remove_everything(host))
    return archive
