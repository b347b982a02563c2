"""GET /v1/keys: the issuer public keys and this gate's site rotation key, with ETag."""

from __future__ import annotations

import base64
import hashlib
import json

from fastapi import APIRouter, HTTPException, Request, Response

from ...db.models import Site
from ...services import signing
from ..deps import GateDep, SessionDep
from .credentials import etag_matches

router = APIRouter()


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@router.get("/v1/keys")
def get_keys(request: Request, gate: GateDep, session: SessionDep) -> Response:
    site = session.get(Site, gate.site_id)
    if site is None:
        raise HTTPException(500, "gate without a site")
    secret: bytes = request.app.state.secret
    # the rotation key of this token's site only: a gate of another site cannot
    # compute the codes of this site's passes
    body = {"keys": [k.to_json() for k in signing.public_keys(session).keys],
            "rotation_keys": {site.name: b64url(signing.site_rotation_key(secret, site))}}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    # the ETag hashes the body (a few keys): it changes with any key or site key
    tag = '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-store"}
    if etag_matches(request.headers.get("If-None-Match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(text, media_type="application/json", headers=headers)
