"""Per-file sizes and SHA-256 checksums, so a reader can tell a damaged catalog."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from xmatch.store import paths

ALGORITHM = "sha256"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(root: Path, known: dict[str, str] | None = None) -> dict:
    """Manifest of every file under ``root``; ``known`` gives checksums already computed."""
    known = known or {}
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relpath = path.relative_to(root).as_posix()
        if relpath == paths.MANIFEST_FILE:
            continue
        files[relpath] = {"bytes": path.stat().st_size,
                          ALGORITHM: known.get(relpath) or file_sha256(path)}
    return {"algorithm": ALGORITHM, "files": files}


def write_manifest(root: Path, known: dict[str, str] | None = None) -> dict:
    manifest = build_manifest(root, known)
    (root / paths.MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def check_manifest(root: Path, manifest: dict, checksums: bool) -> list[str]:
    """Problems found comparing ``root`` with ``manifest`` (empty when intact).

    Sizes and presence are always checked; contents only with ``checksums``.
    """
    problems = []
    for relpath, expected in manifest["files"].items():
        path = root / relpath
        if not path.is_file():
            problems.append(f"{relpath}: missing")
            continue
        size = path.stat().st_size
        if size != expected["bytes"]:
            problems.append(f"{relpath}: {size} bytes, manifest says {expected['bytes']}")
        elif checksums and file_sha256(path) != expected[ALGORITHM]:
            problems.append(f"{relpath}: content differs from its checksum")
    return problems
