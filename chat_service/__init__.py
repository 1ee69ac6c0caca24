"""The chat service: website chat over WebSockets, the REST API and the serving engines."""
