"""The HTTP door: the route table, request parsing and authentication, error responses."""
