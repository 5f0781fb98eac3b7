"""
JWT authentication that only recognizes users who exist and are active.

edx-drf-extensions' ``JwtAuthentication`` creates the token's user when it does not exist. A
JWT outlives the account it was issued for: a token of a deleted user must not bring the account
back, nor a deactivated user's token act for them. The LMS and CMS share the user table, so on
the Open edX path every valid token's user exists too.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from edx_rest_framework_extensions.auth.jwt.authentication import JwtAuthentication
from rest_framework import exceptions


class ExistingUserJwtAuthentication(JwtAuthentication):
    """``JwtAuthentication`` that refuses tokens of missing or inactive users, and creates no one."""

    def authenticate_credentials(self, payload: dict[str, Any]) -> Any:
        username = self._get_username_from_payload(payload)
        user = get_user_model().objects.filter(username=username).first() if username else None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed("The token's user does not exist or is deactivated.")
        return super().authenticate_credentials(payload)
