"""
Create or update the service user and its OAuth2 client (standalone project).

Inside Open edX the Tutor init task does this with the platform's own commands
(``manage_user`` and ``create_dot_application``); this one does the same for the standalone
project, where those commands do not exist. Running it twice changes nothing; a changed
secret is applied.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from oauth2_provider.models import AbstractApplication, get_application_model

APPLICATION_NAME = "exportbulk"
PASSWORD_APPLICATION_NAME = "exportbulk-password"
MIN_SECRET_LENGTH = 32  # as long as the secret Tutor generates (CONFIG_UNIQUE)


class Command(BaseCommand):
    help = "Create or update the exportbulk service user (staff) and its client-credentials OAuth2 client."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", required=True)
        parser.add_argument(
            "--password",
            help="also let the user log in (password grant, client <client-id>-password); default: unusable",
        )

    @transaction.atomic
    def handle(
        self,
        *args: Any,
        username: str,
        email: str,
        client_id: str,
        client_secret: str,
        password: str | None = None,
        **options: Any,
    ) -> None:
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        changed = created
        if (user.email, user.is_staff, user.is_active) != (email, True, True):
            user.email, user.is_staff, user.is_active = email, True, True
            changed = True
        if password and not user.check_password(password):
            user.set_password(password)
            changed = True
        elif not password and user.has_usable_password():
            user.set_unusable_password()
            changed = True
        if changed:
            user.save()
        app_changed = _ensure_application(
            user, APPLICATION_NAME, client_id, client_secret, AbstractApplication.GRANT_CLIENT_CREDENTIALS
        )
        if password:
            # The password grant is allowed only through an application registered for it.
            app_changed |= _ensure_application(
                user, PASSWORD_APPLICATION_NAME, password_client_id(client_id), client_secret,
                AbstractApplication.GRANT_PASSWORD,
            )  # fmt: skip
        verb = "Created" if created else ("Updated" if changed or app_changed else "Unchanged:")
        self.stdout.write(f"{verb} service user {username!r} and OAuth2 client {client_id!r}.")
        if len(client_secret) < MIN_SECRET_LENGTH:
            # The client id is no secret: a short secret is all that stands between it and a token.
            self.stderr.write(
                f"Warning: the client secret has {len(client_secret)} characters; use at least "
                f"{MIN_SECRET_LENGTH} random ones, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )


def password_client_id(client_id: str) -> str:
    """The client id of the service user's password-grant application."""
    return f"{client_id}-password"


def _ensure_application(user: Any, name: str, client_id: str, client_secret: str, grant: str) -> bool:
    """Create or update the user's application of that name; whether anything changed."""
    application_model = get_application_model()
    if application_model.objects.filter(client_id=client_id).exclude(user=user, name=name).exists():
        raise CommandError(f"The client id {client_id!r} belongs to another application.")
    app = application_model.objects.filter(user=user, name=name).first() or application_model(
        user=user, name=name
    )
    wanted = {
        "client_id": client_id,
        "client_type": AbstractApplication.CLIENT_CONFIDENTIAL,
        "authorization_grant_type": grant,
        "skip_authorization": True,
    }
    changed = app.pk is None or any(getattr(app, field) != value for field, value in wanted.items())
    # DOT hashes client secrets (2.x+); compare through the hasher, or plainly for 1.x.
    if app.pk is None or not (
        check_password(client_secret, app.client_secret) or app.client_secret == client_secret
    ):
        app.client_secret = client_secret
        changed = True
    if changed:
        for field, value in wanted.items():
            setattr(app, field, value)
        app.save()
    return changed
