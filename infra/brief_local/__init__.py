"""The local stack: Brief's template.yaml run on loopback with moto, offline."""
