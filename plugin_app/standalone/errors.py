"""Django's error reports (the DEBUG page, admin e-mails) without credentials inside URLs."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host -- the password part.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+@", re.IGNORECASE)


def mask_url_credentials(text: str) -> str:
    """The text with every ``scheme://user:password@`` password replaced by stars."""
    return _URL_PASSWORD.sub(r"\g<head>********************@", text)


class CredentialMaskingFilter(SafeExceptionReporterFilter):
    """Django's filter (names like KEY, SECRET, AUTH, PASS hidden), plus passwords inside URLs."""

    def cleanse_setting(self, key: int | str, value: Any) -> Any:
        value = super().cleanse_setting(key, value)
        return mask_url_credentials(value) if isinstance(value, str) else value
