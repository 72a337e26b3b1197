"""The checked-in stubs are what the .proto generates today."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATED = ["xmatch_pb2.py", "xmatch_pb2.pyi", "xmatch_pb2_grpc.py"]


def test_stubs_are_current(tmp_path):
    """Regenerate with the pinned grpcio-tools; to refresh after editing the proto:
    python -m grpc_tools.protoc -Iproto --python_out=src --grpc_python_out=src
    --pyi_out=src proto/xmatch/v1/xmatch.proto"""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO / 'proto'}",
                    f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", str(REPO / "proto/xmatch/v1/xmatch.proto")],
                   check=True)
    for name in GENERATED:
        fresh = (tmp_path / "xmatch" / "v1" / name).read_text()
        checked_in = (REPO / "src" / "xmatch" / "v1" / name).read_text()
        assert fresh == checked_in, f"src/xmatch/v1/{name} is stale: regenerate it"
