"""
The OAuth2 token endpoint of the standalone project, shaped like the LMS's (oauth_dispatch).

``POST /oauth2/access_token/`` answers a bearer token, or a JWT when the form has
``token_type=jwt``, signed with the project's private JWK and carrying the claims the LMS puts
in its JWTs, so edx-drf-extensions' ``JwtAuthentication`` accepts it unchanged.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.debug import sensitive_variables
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.views import TokenView

from plugin_app.standalone.throttle import is_throttled, record_failure, too_many

_THROTTLE_GROUP = "exportbulk.token"


class StandaloneOAuth2Validator(OAuth2Validator):
    """DOT's validator with the rules service clients rely on (LMS-like).

    Grant types are DOT's: an application uses the one it is registered for, so the password
    grant works only through an application registered for it, never a client-credentials one.
    """

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        # The client acts as its user: a deactivated user's clients get no token.
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        return request.client.user is None or request.client.user.is_active

    def _create_access_token(
        self, expires: datetime, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> Any:
        # Client-credentials tokens act as the application's user, as in the LMS.
        if request.grant_type == "client_credentials":
            request.user = request.client.user
        return super()._create_access_token(expires, request, token, source_refresh_token)


@sensitive_variables("private", "key")
def make_jwt(user: User, expires_in: int, scopes: list[str], grant_type: str) -> str:
    """A JWT for the user, with the LMS's claims (version 1.2.0)."""
    now = int(time.time())
    payload = {
        "iss": settings.JWT_AUTH["JWT_ISSUER"],
        "aud": settings.JWT_AUTH["JWT_AUDIENCE"],
        "iat": now,
        "exp": now + expires_in,
        "sub": hashlib.sha1(f"{user.id}".encode(), usedforsecurity=False).hexdigest(),
        "preferred_username": user.username,
        "user_id": user.id,
        "email": user.email,
        "email_verified": user.is_active,
        "administrator": user.is_staff,
        "scopes": scopes,
        "grant_type": grant_type,
        "version": "1.2.0",
        "filters": [],
        "is_restricted": False,
    }
    jwt_auth: dict[str, Any] = settings.JWT_AUTH
    private = json.loads(jwt_auth["JWT_PRIVATE_SIGNING_JWK"])
    key = jwt.algorithms.RSAAlgorithm.from_jwk(private)
    assert isinstance(key, RSAPrivateKey), "JWT_PRIVATE_SIGNING_JWK holds a private key"
    return jwt.encode(payload, key, algorithm=jwt_auth["JWT_ALGORITHM"], headers={"kid": private["kid"]})


class AccessTokenView(TokenView):
    """DOT's token view; with ``token_type=jwt`` the bearer token is exchanged for a JWT."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if is_throttled(request, _THROTTLE_GROUP):
            return too_many(as_json=True)
        response = super().post(request, *args, **kwargs)
        if response.status_code in (400, 401):  # a wrong client, secret, password or grant
            record_failure(request, _THROTTLE_GROUP)
        if response.status_code != 200 or request.POST.get("token_type", "").lower() != "jwt":
            return response
        body = json.loads(response.content)
        checksum = hashlib.sha256(body["access_token"].encode("utf-8")).hexdigest()
        token = get_access_token_model().objects.select_related("user").get(token_checksum=checksum)
        if token.user is None:
            return JsonResponse(
                {"error": "invalid_client", "error_description": "No user for this client."}, status=400
            )
        scopes = body.get("scope", "").split()
        grant_type = request.POST.get("grant_type", "")
        body.update(
            access_token=make_jwt(token.user, body["expires_in"], scopes, grant_type), token_type="JWT"
        )
        return JsonResponse(body)
