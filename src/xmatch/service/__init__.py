"""The gRPC service ``xmatch.v1.Xmatch``: the embedded and shard servers, the router of a
cluster, and the Python clients (see docs/service.md)."""
