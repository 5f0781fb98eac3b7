"""Secrets of the standalone project, made once per state folder and kept there."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def _create_once(path: Path, make: Callable[[], str]) -> str:
    """The file's text; if it does not exist, write ``make()`` to it first.

    Written aside then hard-linked into place: when processes race, one wins and every one
    reads the whole winning file.
    """
    if not path.exists():
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".key-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(make())
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
        os.unlink(temp)
    return path.read_text("utf-8")


def secret_key(home: Path) -> str:
    return _create_once(home / "secret_key", lambda: secrets.token_urlsafe(50))


def jwt_keys(home: Path) -> tuple[str, str]:
    """The private signing JWK (JSON) and the public JWK set (JSON), as the LMS configures them."""

    def make() -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
        jwk["kid"] = secrets.token_hex(8)
        return json.dumps(jwk)

    private = json.loads(_create_once(home / "jwt_signing_key.json", make))
    public = {name: private[name] for name in ("kty", "n", "e", "kid")}
    return json.dumps(private), json.dumps({"keys": [public]})
