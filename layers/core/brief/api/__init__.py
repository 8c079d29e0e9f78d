"""Brief's HTTP API: FastAPI, served by uvicorn locally and by Mangum behind API Gateway."""

from brief.api.app import create_app

__all__ = ["create_app"]
