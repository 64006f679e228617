"""Request bodies that are JSON or multipart with a PDF ``file``, read once for every route.

Bounded: a declared or actual body over the upload limit is a 413, an uploaded PDF becomes the
``text`` field through ``scimatch.pdftext`` (its errors are 422s naming the file).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from scimatch.pdftext import extract_pdf


def _not_json(constant: str) -> None:
    """NaN and Infinity are not JSON (Python accepts them; the 422 that echoes them could not be sent)."""
    raise ValueError(f"{constant} is not valid JSON")


async def body_or_pdf(request: Request, max_bytes: int) -> dict:
    """JSON body, or multipart with a PDF ``file`` plus the other fields as form values."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload larger than {max_bytes} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = await request.body()
        if len(body) > max_bytes:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "body too large")
        try:
            data = json.loads(body, parse_constant=_not_json)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body must be a JSON object")
        return data
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes)
        data: dict = {k: v for k, v in form.multi_items() if isinstance(v, str) and k not in ("asker", "kinds")}
        if form.getlist("asker"):
            data["asker"] = [v for v in form.getlist("asker") if isinstance(v, str)]
        if form.getlist("kinds"):
            data["kinds"] = [v for v in form.getlist("kinds") if isinstance(v, str)]
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            raw = await upload.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "file too large")
            # in the thread pool: parsing (up to its deadline) must not stall the event loop
            data["text"] = (await run_in_threadpool(extract_pdf, raw, name=upload.filename or "upload.pdf")).text
        return data
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send application/json or multipart/form-data")


def validated(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, json.loads(exc.json())) from exc


class ErrorOut(BaseModel):
    """Every error the API answers: a message, or the list (or object) of what failed validation."""

    detail: str | list[Any] | dict[str, Any] = Field(description="What was wrong, naming the parameter, file or line.")


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description, **extra}


# The error answers a route may give, for the OpenAPI schema (routers pass them as ``responses``): the domain
# errors of the routes and the limits of ``api/ratelimit.py``, which answer before any route runs.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("A request the engine cannot answer, e.g. an organisation without documents."),
    404: _error("No record or organisation with that id."),
    413: _error("Request body or uploaded file larger than the limit."),
    415: _error("A body that is neither JSON nor multipart/form-data."),
    422: _error("Invalid parameters, body, text or file (named, with the line where there is one), "
                "or a query string over the limit."),
    429: _error("Too many expensive requests (matching, related work from a text or PDF, uploads, writes) "
                "from this API key or address.",
                headers={"Retry-After": {"description": "Seconds until the next request is allowed.",
                                         "schema": {"type": "integer"}, "required": True}}),
}
