"""Generated protobuf and gRPC stubs of the xmatch.v1 API (proto/xmatch/v1/xmatch.proto)."""
