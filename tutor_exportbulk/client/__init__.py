"""
A REST client for Open edX and for this plugin's APIs: requests only, no Django.

``OpenedxRESTAPIClient`` is composed of one mixin per concern: ``transport`` (session, token,
retries), ``lms`` (the LMS APIs) and one module per process kind of this plugin (``exports``,
``uploads``), over ``processes`` (status, lists and waiting, shared by every kind). A new kind
adds its module and one base class below.
"""

from tutor_exportbulk.client.errors import OpenedxAPIError, OpenedxAuthError, public_url
from tutor_exportbulk.client.exports import ExportsMixin
from tutor_exportbulk.client.lms import LMSMixin
from tutor_exportbulk.client.processes import FINAL_STATUSES
from tutor_exportbulk.client.uploads import UploadsMixin

__all__ = ["FINAL_STATUSES", "OpenedxAPIError", "OpenedxAuthError", "OpenedxRESTAPIClient", "public_url"]


class OpenedxRESTAPIClient(LMSMixin, ExportsMixin, UploadsMixin):
    """
    A client of the Open edX LMS and of this plugin's Studio APIs.

    Usage::

        client = OpenedxRESTAPIClient("https://lms.example.com", CLIENT_ID, CLIENT_SECRET,
                                      studio_url="https://studio.example.com")
        courses = client.list_all_courses(org="edX")

    One ``requests.Session`` per client; the OAuth2 access token lives in memory and is renewed
    before it expires, and once more when the server answers 401. Every failure is an
    ``OpenedxAPIError`` carrying the status, a URL safe to print and the server's own message.
    Not meant to be shared between threads (neither is its ``requests.Session``).
    """
