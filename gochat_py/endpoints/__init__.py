"""HTTP and WebSocket entry points: parse, call a service, shape the response."""
