"""Adapters: the technologies behind Brief's ports (S3, SQS, httpx, in-memory fakes)."""
