"""Stream: the API served by uvicorn behind the Lambda Web Adapter, for response streaming.

API Gateway (functions/api, through Mangum) buffers every response; this function serves the
same app through a Function URL in RESPONSE_STREAM mode, so server-sent events arrive as they
happen. `run.sh` starts uvicorn on this module's `app`; the adapter proxies each request.
"""

from __future__ import annotations

from brief.api import create_app
from brief.runtime import Container

container = Container()
app = create_app(lambda: container.wiring)  # clients are built on uvicorn's loop, on first use
