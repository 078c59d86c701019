#!/usr/bin/env bash
# Regenerate the Python code of every .proto kept in src/modelrunner/server/proto (the one source of truth).
# Dev-time only (grpcio-tools); the generated *_pb2*.py files are committed and never edited by hand.
#
# The generated messages are registered in a private descriptor pool instead of the process-wide default
# one, so they coexist with other copies of the same standard V2 proto (tritonclient's, KServe's) that
# define the same `inference.*` names in one process.
#
# The generated code pins its runtime: protobuf >= the gencode version printed in *_pb2.py and grpcio >=
# GRPC_GENERATED_VERSION in *_pb2_grpc.py. Keep pyproject.toml's lower bounds in step after regenerating.
#
# Usage: scripts/generate_protos.sh   (from anywhere; uses $PYTHON, else .venv/bin/python, else python3)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/src"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

for proto in modelrunner/server/proto/*.proto; do
  "$python" -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. "$proto"
  module="${proto%.proto}_pb2.py"
  sed -i 's/^DESCRIPTOR = _descriptor_pool\.Default()\.AddSerializedFile(/DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile(/' "$module"
  grep -q '_descriptor_pool.DescriptorPool().AddSerializedFile' "$module" \
    || { echo "error: could not move $module to a private descriptor pool" >&2; exit 1; }
  echo "generated from $proto"
done
