"""The data directory: published catalogs by name, atomic publishing, registration.

``<data>/<name>`` is a symbolic link. For a catalog xmatch wrote it points into
``.versions/<name>/``; for a registered foreign HATS catalog it points at that catalog,
unchanged, and ``.registered/<name>.json`` keeps our metadata about it. Publishing writes
the new version completely, then replaces the link with ``rename(2)``, which is atomic:
a reader sees the old version or the new one, never a mixture, and a load killed at any
point leaves the old version published.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from xmatch.errors import CatalogNotFoundError, XmatchError
from xmatch.store import paths


def default_data_dir() -> Path:
    """``$XMATCH_DATA``, else ``$XDG_DATA_HOME/xmatch``, else ``~/.local/share/xmatch``."""
    if os.environ.get(paths.DATA_ENV_VAR):
        return Path(os.environ[paths.DATA_ENV_VAR]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "xmatch"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DataDirectory:
    """A directory of catalogs, one entry per name."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None else default_data_dir()

    def __repr__(self):
        return f"DataDirectory({str(self.root)!r})"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and paths.is_hats_catalog(p))

    def path(self, name: str) -> Path:
        path = self.root / name
        if name.startswith(".") or not paths.is_hats_catalog(path):
            known = ", ".join(self.names()) or "none"
            raise CatalogNotFoundError(
                f"no catalog '{name}' in {self.root} (loaded catalogs: {known}); "
                f"load it with `xmatch load {name}`")
        return path

    def registered_metadata(self, name: str) -> dict | None:
        """Our metadata about a registered foreign catalog, if ``name`` is one."""
        link = self.root / name
        meta = self.root / paths.REGISTERED_DIR / f"{name}.json"
        if meta.is_file() and link.is_symlink() and not self._owned(link):
            return json.loads(meta.read_text())
        return None

    def _owned(self, link: Path) -> bool:
        target = Path(os.readlink(link))
        return not target.is_absolute() and target.parts[0] == paths.VERSIONS_DIR

    # ------------------------------------------------------------ writing

    def new_staging(self, name: str) -> Path:
        staging = self.root / paths.STAGING_DIR / f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        return staging

    def clean_stale_staging(self) -> None:
        """Remove what loads killed before they could clean up left behind."""
        staging_root = self.root / paths.STAGING_DIR
        if not staging_root.is_dir():
            return
        for entry in staging_root.iterdir():
            try:
                pid = int(entry.name.rsplit("-", 2)[-2])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid):
                shutil.rmtree(entry, ignore_errors=True)

    def _check_replaceable(self, name: str) -> Path:
        link = self.root / name
        if link.exists() and not link.is_symlink():
            raise XmatchError(
                f"{link} exists and was not published by xmatch; move it away or choose "
                "another catalog name")
        return link

    def _swap_link(self, name: str, target: str) -> None:
        link = self.root / name
        temporary = self.root / f".{name}.link-{uuid.uuid4().hex[:8]}"
        os.symlink(target, temporary)
        os.replace(temporary, link)  # the atomic step
        _fsync_dir(self.root)

    def publish(self, name: str, built: Path, staging: Path) -> Path:
        """Make the complete catalog at ``built`` the current version of ``name``."""
        self._check_replaceable(name)
        version = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:8]}"
        versions = self.root / paths.VERSIONS_DIR / name
        versions.mkdir(parents=True, exist_ok=True)
        target = versions / version
        os.rename(built, target)
        _fsync_dir(versions)
        self._swap_link(name, os.path.join(paths.VERSIONS_DIR, name, version))
        (self.root / paths.REGISTERED_DIR / f"{name}.json").unlink(missing_ok=True)
        for old in versions.iterdir():
            if old.name != version:
                shutil.rmtree(old, ignore_errors=True)
        return self.root / name

    def register(self, name: str, external: Path, metadata: dict) -> Path:
        """Serve the HATS catalog at ``external`` as ``name`` without copying it."""
        self._check_replaceable(name)
        registered = self.root / paths.REGISTERED_DIR
        registered.mkdir(parents=True, exist_ok=True)
        temporary = registered / f".{name}.json.tmp"
        temporary.write_text(json.dumps(metadata, indent=2, default=str) + "\n")
        os.replace(temporary, registered / f"{name}.json")
        self._swap_link(name, str(external.resolve()))
        old_versions = self.root / paths.VERSIONS_DIR / name
        shutil.rmtree(old_versions, ignore_errors=True)
        return self.root / name

    def remove(self, name: str) -> None:
        link = self.path(name)
        owned = link.is_symlink() and self._owned(link)
        link.unlink()
        if owned:
            shutil.rmtree(self.root / paths.VERSIONS_DIR / name, ignore_errors=True)
        (self.root / paths.REGISTERED_DIR / f"{name}.json").unlink(missing_ok=True)
