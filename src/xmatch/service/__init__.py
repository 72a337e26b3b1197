"""The gRPC service: servers, and (later) router and client."""
