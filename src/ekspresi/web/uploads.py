"""Getting one image out of an HTTP request (multipart ``file`` or raw body) and decoding it
with :func:`ekspresi.imaging.read_image`, turning each way it can fail into the right
HTTP status with a message the user can act on."""

from __future__ import annotations

import numpy as np
from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile

from ekspresi.errors import BadInputError
from ekspresi.imaging import NOT_AN_IMAGE, read_image
from ekspresi.web.middleware import too_large_message
from ekspresi.web.settings import WEB_MAX_SIDE

#: What the upload endpoints accept, for the OpenAPI description.
UPLOAD_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "An image (JPEG, PNG, WebP, BMP, TIFF, GIF…), either as the `file` "
                       "field of a multipart form or as the raw request body.",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["file"],
                           "properties": {"file": {"type": "string", "format": "binary"}}}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


async def read_upload(request: Request, limit_bytes: int) -> tuple[bytes, str]:
    """Return (bytes, display name) of the uploaded image; 413 above ``limit_bytes``,
    422 when the request carries no file."""
    ctype = request.headers.get("content-type", "").lower()  # media types ignore case
    if ctype.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        try:
            part = form.get("file")
            if not isinstance(part, UploadFile):
                raise HTTPException(422, "multipart body has no 'file' part; send the image "
                                         "as the form field named 'file'")
            name = part.filename or "upload"
            data = await part.read(limit_bytes + 1)
        finally:
            await form.close()
    else:
        name = "upload"
        data = await request.body()
    if len(data) > limit_bytes:
        raise HTTPException(413, too_large_message(limit_bytes))
    if not data:
        raise HTTPException(422, "the request has no image (empty body or empty file)")
    return data, name


def decode_upload(data: bytes, name: str, max_pixels: int,
                  max_side: int = WEB_MAX_SIDE) -> np.ndarray:
    """Decode with the project's one image reader. Unrecognised formats -> 415; images that
    are recognised but unusable (corrupt, truncated, too many pixels, a side too long, any
    decoder failure) -> 422."""
    try:
        return read_image(data, name=name, max_pixels=max_pixels, max_side=max_side)
    except BadInputError as exc:
        status = 415 if exc.problem == NOT_AN_IMAGE else 422
        if status == 415:
            message = (f"{name}: not an image this server can read; send a JPEG, PNG, WebP, "
                       "BMP, TIFF or GIF file")
        else:
            message = str(exc)
        raise HTTPException(status, message) from None


def check_video_frames(width: int, height: int, name: str, max_pixels: int,
                       max_side: int = WEB_MAX_SIDE) -> None:
    """The image limits, applied to a video's frame size as its container header gives it
    (before any frame is decoded): 422 when a frame would be above them."""
    if width * height > max_pixels:
        raise HTTPException(422, f"{name}: video frames are {width}x{height} = "
                                 f"{width * height:,} pixels, above this server's limit of "
                                 f"{max_pixels:,} pixels a frame")
    if max(width, height) > max_side:
        raise HTTPException(422, f"{name}: video frames are {width}x{height}: the longer side "
                                 f"is above this server's limit of {max_side:,} pixels")
