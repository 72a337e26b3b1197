"""Third-party loaders plug in through the ``xmatch.loaders`` entry-point group."""

import subprocess
import sys
import textwrap

PLUGIN = '''
import numpy as np
import pyarrow as pa
from xmatch.loaders import Chunk

def _rows(n):
    return pa.table({"key": np.arange(n), "lon": np.linspace(0, 359, n),
                     "lat": np.linspace(-89, 89, n)})

class GridLoader:
    name = "grid"
    description = "a regular grid (test plug-in)"
    synthetic = True
    def chunks(self, source, spec, chunk_rows):
        yield Chunk(source, 1, 500, _rows, (500,))

LOADER = GridLoader()
'''


def test_entry_point_loader_is_found_and_used(tmp_path):
    package = tmp_path / "site"
    package.mkdir()
    (package / "grid_plugin.py").write_text(PLUGIN)
    dist = package / "grid_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: grid-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[xmatch.loaders]\ngrid = grid_plugin:LOADER\n")
    spec = tmp_path / "grid.toml"
    spec.write_text('name = "grid"\nloader = "grid"\ndefault_source = "grid:500"\n'
                    '[columns]\nid = "key"\nra = "lon"\ndec = "lat"\n')
    env_path = f"{package}"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {env_path!r})
        from xmatch.cli import main
        sys.exit(main(["loaders"]) or main(["load", "--spec", {str(spec)!r}, "--no-progress",
                                            "--workers", "1", "--data", {str(tmp_path / 'd')!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "grid" in done.stdout and "a regular grid (test plug-in)" in done.stdout
    assert "grid: 500 rows" in done.stdout and "[SYNTHETIC]" in done.stdout
