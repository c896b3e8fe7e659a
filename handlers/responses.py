"""Responses of large lists, written as JSON once.

Returned as a `Response`, a body is not validated a second time against the route's
`response_model`, which FastAPI otherwise does for every item (10,000 phases: 55 ms of 120).
The `response_model` stays on the route for the OpenAPI document, and the schema tests check
the bodies against it."""

from __future__ import annotations

import json

from fastapi import Response
from pydantic import BaseModel


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    """`model` as a JSON response."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


def plain_json(document: object) -> Response:
    """JSON-ready values (dicts, lists, strings, numbers) as a JSON response: for lists too
    long to build a model per item (a pydantic model costs ~2 µs to make, a dict ~0.3)."""
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode(), media_type="application/json")
