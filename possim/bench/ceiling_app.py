"""The ceiling of ``possim bench --only core``: FastAPI under uvicorn doing nothing but answer.

One ``POST /v1/payments`` that reads the JSON body and answers a small JSON payment, served exactly as
``possim core serve`` serves the core (``uvicorn.run`` with the same options, in its own process), so
the same clients measure what the stack alone allows on this machine: no signature check, no store.
The route is ``async``, the least FastAPI can do; the core's routes are plain ``def``s run in FastAPI's
worker threads, a hop the ceiling does not pay.

    python -m possim.bench.ceiling_app --port 8799
"""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import uvicorn
from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    app = FastAPI(title="possim bench ceiling", docs_url=None, redoc_url=None, openapi_url=None)
    numbers = itertools.count(1)

    @app.post("/v1/payments")
    async def create_payment(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {
            "id": f"pay_{next(numbers)}",
            "order_id": body.get("order_id"),
            "status": "succeeded",
            "amount": body.get("amount"),
        }

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m possim.bench.ceiling_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    print(f"possim bench ceiling on http://{args.host}:{args.port}", flush=True)
    # The options of possim.commands.core.run_serve, so that only the app differs.
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info", proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
