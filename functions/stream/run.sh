#!/bin/sh
# Started by the Lambda Web Adapter (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap), which waits for
# /health and then proxies every request to this server. The layer's packages are in
# /opt/python; uvicorn comes with this function (requirements.txt).
export PYTHONPATH="${LAMBDA_TASK_ROOT}:/opt/python${PYTHONPATH:+:$PYTHONPATH}"
exec python -m uvicorn --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
    --no-access-log --timeout-graceful-shutdown 5 app:app
