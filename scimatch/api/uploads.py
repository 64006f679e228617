"""Request bodies that are JSON or multipart with a PDF ``file``, read once for every route.

Bounded: a declared or actual body over the upload limit is a 413, an uploaded PDF becomes the
``text`` field through ``scimatch.pdftext`` (its errors are 422s naming the file).
"""

from __future__ import annotations

import json

from fastapi import HTTPException, Request, status
from pydantic import BaseModel, ValidationError

from scimatch.pdftext import extract_pdf


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
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body is not valid JSON") from None
        if not isinstance(data, dict):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "body must be a JSON object")
        return data
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=20, max_part_size=max_bytes)
        data: dict = {k: v for k, v in form.multi_items() if isinstance(v, str) and k not in ("asker", "kinds")}
        data["asker"] = [v for v in form.getlist("asker") if isinstance(v, str)]
        if form.getlist("kinds"):
            data["kinds"] = [v for v in form.getlist("kinds") if isinstance(v, str)]
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            raw = await upload.read(max_bytes + 1)
            if len(raw) > max_bytes:
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "file too large")
            data["text"] = extract_pdf(raw, name=upload.filename or "upload.pdf").text
        return data
    raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send application/json or multipart/form-data")


def validated(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, json.loads(exc.json())) from exc
