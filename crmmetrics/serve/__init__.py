"""The HTTP service: app, server, scheduler service, web config, logging; may import readers and below."""
