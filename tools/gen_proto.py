"""Generate the Python gRPC code and .pyi stubs for proto/ into sdk/src/evoprompt/sdk/proto/.

protoc names the generated modules after the .proto path (evoprompt.evaluator.v1), but the
generated code ships inside the SDK package; like Optuna, we rewrite the one generated import
instead of adding sys.path tricks. `--check` regenerates into a temporary folder and fails on
any difference from the committed files (CI's drift check).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO = "evoprompt/evaluator/v1/evaluator.proto"
TARGET = ROOT / "sdk" / "src" / "evoprompt" / "sdk" / "proto"
GENERATED = ("evaluator_pb2.py", "evaluator_pb2.pyi", "evaluator_pb2_grpc.py", "evaluator_pb2_grpc.pyi")
IMPORT_FROM = "from evoprompt.evaluator.v1 import evaluator_pb2"
IMPORT_TO = "from evoprompt.sdk.proto import evaluator_pb2"


def generate(out_dir: Path) -> None:
    # protoc finds the mypy-protobuf plugins on PATH: put this interpreter's scripts first.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as raw:
        grpc_include = Path(protoc.__file__).parent / "_proto"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{grpc_include}",
            f"--python_out={raw}",
            f"--grpc_python_out={raw}",
            f"--mypy_out={raw}",
            f"--mypy_grpc_out={raw}",
            PROTO,
        ]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        produced = Path(raw) / Path(PROTO).parent
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in GENERATED:
            text = (produced / name).read_text()
            (out_dir / name).write_text(text.replace(IMPORT_FROM, IMPORT_TO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    opts = parser.parse_args()
    if not opts.check:
        generate(TARGET)
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = [
            n for n in GENERATED
            if not (TARGET / n).exists() or not filecmp.cmp(Path(tmp) / n, TARGET / n, shallow=False)
        ]
    if stale:
        sys.exit(f"generated code is stale: {', '.join(stale)}; run `make proto` and commit the result")
    print("generated code is up to date")


if __name__ == "__main__":
    main()
