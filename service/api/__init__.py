"""The HTTP face of the service: FastAPI routers over the domain functions."""
