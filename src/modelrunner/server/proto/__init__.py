"""Open Inference Protocol (V2) gRPC proto and its generated code (scripts/generate_protos.sh)."""
