"""Real sample alerts shipped with xmatch (see PROVENANCE.md beside this file)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def sample_paths() -> list[Path]:
    """The bundled tarballs: 100 real ZTF alerts and 3 real Rubin/LSSTCam alerts."""
    return sorted(HERE.glob("*.tar.gz"))
