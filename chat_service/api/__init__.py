"""HTTP and WebSocket edges: parse, call a service or data function, map the result."""
