"""Entity tags: a body's ETag is a hash of its bytes, and a header names it in either encoding.

Beneath every layer, so the GET responses (`app/api/responses.py`) and the services that check a
write's `If-Match` read an entity's version the same way.
"""

from __future__ import annotations

import hashlib


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Does an If-None-Match / If-Match header name this entity, in either of its encodings?"""
    if not header:
        return False
    candidates = {tag.strip().removeprefix("W/").replace('-gzip"', '"') for tag in header.split(",")}
    return etag in candidates or "*" in candidates
