"""
Who may call what: every endpoint of ``rest_api/v0/urls.py`` against every kind of caller.

``EXPECTED`` below is the specification, one row per caller and one column per endpoint; the
matrix test sends each request and checks the status *and* what the request left behind (no
process, no stored file, no course change when refused), so a broken check fails here.

The world every cell runs in: ``owner`` (an author of course A) has a finished export and a
finished upload (with its report); every other user has one queued process of each kind of its
own, so the list endpoints must show exactly those and nothing of the owner's.
"""

from __future__ import annotations

import functools
import io
import json
import shutil
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings as django_settings
from django.contrib.auth.models import Group
from django.core import signing
from django.urls import reverse
from oauth2_provider.models import AbstractApplication, get_application_model
from opaque_keys.edx.keys import CourseKey
from rest_framework.test import APIClient

from plugin_app import api, backups, restores, storage
from plugin_app.backends.olx_directory import author_group_name
from plugin_app.data import ItemStatus, ProcessKind, ProcessStatus, UploadMode
from plugin_app.models import BulkItem, BulkProcess
from plugin_app.rest_api.v0 import urls
from tests.builders import content_zip, manifest
from tests.conftest import SAMPLE_COURSE_ID, jwt_for

pytestmark = pytest.mark.django_db

COURSE_A = SAMPLE_COURSE_ID
COURSE_B = "course-v1:OtherOrg+Other+2027"  # exists; the author fixture may not author it
MISSING = "course-v1:OtherOrg+Missing+2027"  # does not exist
PAYLOAD = {"a.pdf": b"%PDF-1.4 authz"}

# Endpoint -> (route name in urls.py, which of the world's ids its URL takes).
ENDPOINTS = {
    "export": ("export", None),
    "export-status": ("export-status", "export"),
    "export-status-list": ("export-status-list", None),
    "upload": ("upload", None),
    "upload-status": ("upload-status", "upload"),
    "upload-status-list": ("upload-status-list", None),
    "process-status": ("process-status", "export"),  # any kind: the owner's export here
    "download-export": ("download", "export_file"),
    "download-report": ("download", "report_file"),  # the upload report CSV: no endpoint of its own
    "export-cancel": ("export-cancel", "export"),
    "upload-cancel": ("upload-cancel", "upload"),
    "backup": ("backup", None),
    "backup-status": ("backup-status", "backup"),
    "backup-status-list": ("backup-status-list", None),
    "backup-versions": ("backup-versions", "course"),  # the versions of course A
    "backup-cancel": ("backup-cancel", "backup"),
    "restore": ("restore", None),
    "restore-status": ("restore-status", "restore"),
    "restore-status-list": ("restore-status-list", None),
    "restore-cancel": ("restore-cancel", "restore"),
    "export-task": ("export-task", "export_task"),  # the owner's export task of course A
    "export-versions": ("export-versions", None),
    "storage-check": ("storage-check", None),  # staff only: it names the bucket and writes to it
}

DENY = (401, 403)  # either is a refusal; what matters is that nothing happens
# fmt: off
EXPECTED = {
    #                      export status list  upload status list  any    dl:tgz csv  cancel:exp upl
    #                      then backup: start status list versions cancel; restore: post status list cancel;
    #                      then the export anchor's: task state, content versions; storage check
    "anonymous":           (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-malformed":       (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-alg-none":        (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-bad-signature":   (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-expired":         (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-wrong-issuer":    (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "jwt-wrong-audience":  (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "bearer-unknown":      (401, 401, 401, 401, 401, 401, 401, 200, 200, 401, 401,
                           401, 401, 401, 401, 401, 401, 401, 401, 401,
                           401, 401, 401),
    "inactive":            (DENY, DENY, DENY, DENY, DENY, DENY, DENY, 200, 200, DENY, DENY,
                           DENY, DENY, DENY, DENY, DENY, DENY, DENY, DENY, DENY,
                           DENY, DENY, DENY),
    "bearer-inactive":     (DENY, DENY, DENY, DENY, DENY, DENY, DENY, 200, 200, DENY, DENY,
                           DENY, DENY, DENY, DENY, DENY, DENY, DENY, DENY, DENY,
                           DENY, DENY, DENY),
    "bearer-other-client": (400, 404, 200, 400, 404, 200, 404, 200, 200, 404, 404,
                           202, 404, 200, 403, 404, 202, 404, 200, 404,
                           404, 200, 403),
    "author":              (200, 404, 200, 200, 404, 200, 404, 200, 200, 404, 404,
                           202, 404, 200, 200, 404, 202, 404, 200, 404,
                           404, 200, 403),
    "staff":               (200, 404, 200, 200, 404, 200, 404, 200, 200, 404, 404,
                           202, 404, 200, 200, 404, 202, 404, 200, 404,
                           404, 200, 200),
    "owner":               (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
                           202, 200, 200, 200, 200, 202, 200, 200, 200,
                           200, 200, 403),
    "bearer-owner":        (200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200,
                           202, 200, 200, 200, 200, 202, 200, 200, 200,
                           200, 200, 403),
}
# fmt: on

# Whose identity each caller presents. The forged and expired JWTs carry the owner's identity:
# even the owner is refused with a bad token.
CALLER_USER = {
    "inactive": "inactive",
    "bearer-inactive": "inactive",
    "bearer-other-client": "other-client",
    "author": "author",
    "staff": "staff",
    "owner": "owner",
    "bearer-owner": "owner",
}


def matrix():
    for caller, row in EXPECTED.items():
        for endpoint, expected in zip(ENDPOINTS, row, strict=True):
            yield pytest.param(endpoint, caller, expected, id=f"{endpoint}-{caller}")


# Tokens -------------------------------------------------------------------------------------


@functools.cache
def foreign_rsa_key():
    """An RSA key the server has never heard of."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


_parse_jwk = jwt.algorithms.RSAAlgorithm.from_jwk


@functools.cache
def _parsed_jwk(jwk: str):
    return _parse_jwk(jwk)


@pytest.fixture(autouse=True)
def parse_each_jwk_once(monkeypatch):
    """Parsing a private JWK costs 60 ms (RSA checks); the matrix signs ~100 tokens with one key."""

    def from_jwk(jwk):
        return _parsed_jwk(jwk if isinstance(jwk, str) else json.dumps(jwk, sort_keys=True))

    monkeypatch.setattr(jwt.algorithms.RSAAlgorithm, "from_jwk", staticmethod(from_jwk))


def reforge(token: str, key=None, algorithm: str | None = None, **claims) -> str:
    """The token's claims, changed, signed again (by the project's own key unless told otherwise)."""
    header = jwt.get_unverified_header(token)
    payload = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    if key is None and algorithm != "none":
        key = jwt.algorithms.RSAAlgorithm.from_jwk(django_settings.JWT_AUTH["JWT_PRIVATE_SIGNING_JWK"])
    return jwt.encode(payload, key, algorithm=algorithm or header["alg"], headers={"kid": header["kid"]})


def bearer_for(user, client_id: str) -> str:
    """A DOT access token of a client-credentials application of the user, from the token endpoint."""
    secret = f"{client_id}-secret"
    get_application_model().objects.create(
        user=user,
        name=client_id,
        client_id=client_id,
        client_secret=secret,
        client_type=AbstractApplication.CLIENT_CONFIDENTIAL,
        authorization_grant_type=AbstractApplication.GRANT_CLIENT_CREDENTIALS,
    )
    answer = APIClient().post(
        "/oauth2/access_token/",
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["access_token"]


# The world ----------------------------------------------------------------------------------


@dataclass
class World:
    users: dict
    ids: dict  # the owner's process ids, download tokens of its files, the inactive user's bearer
    own: dict  # username -> {kind: [ids of the processes that user made]}
    olx_root: Path
    storage_root: Path

    def url(self, endpoint: str) -> str:
        route, arg = ENDPOINTS[endpoint]
        if arg is None:
            return reverse(f"exportbulk:{route}")
        if route == "export-task":
            return (
                reverse(f"exportbulk:{route}", kwargs={"course_id": COURSE_A}) + f"?task_id={self.ids[arg]}"
            )
        key = {"download": "token", "backup-versions": "course_id"}.get(route, "process_id")
        return reverse(f"exportbulk:{route}", kwargs={key: self.ids[arg]})


def upload_form(*course_ids: str) -> dict:
    """A multipart bulk upload: one row per course, the same PDF for each."""
    data = {
        "file": io.BytesIO(manifest([{"course_id": c, "file": "a.pdf"} for c in course_ids])),
        "content": io.BytesIO(content_zip(PAYLOAD)),
    }
    data["file"].name, data["content"].name = "manifest.csv", "content.zip"
    return data


def send(client: APIClient, endpoint: str, world: World):
    """The request to the endpoint, with a body an authorized caller would be answered 200 for."""
    if endpoint == "export":
        return client.post(world.url(endpoint), {"courses": [COURSE_A]}, format="json")
    if endpoint == "upload":
        return client.post(
            world.url(endpoint), upload_form(COURSE_A), format="multipart", HTTP_OPERATION_MODE="upload"
        )
    if endpoint in ("backup", "export-versions"):
        return client.post(world.url(endpoint), {"courses": [COURSE_A]}, format="json")
    if endpoint == "restore":  # a dry run: a course changes only if the check below misses it
        items = [{"source": storage.export_name(COURSE_A), "course_id": COURSE_A}]
        body = {"items": items, "dry_run": True, "overwrite": True}
        return client.post(world.url(endpoint), body, format="json")
    if endpoint.endswith("-cancel"):
        return client.post(world.url(endpoint))
    return client.get(world.url(endpoint))


def download_token(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[1])


@pytest.fixture(autouse=True)
def _items_here(items_in_this_thread):
    pass


@pytest.fixture
def world(django_user_model, olx_root, local_storage, staff, author) -> World:
    """The owner's finished export and upload, and one queued process of each kind per other user."""
    group = Group.objects.get(name=author_group_name(CourseKey.from_string(COURSE_A)))
    owner = django_user_model.objects.create_user("owner", "owner@example.com", "pw")
    owner.groups.add(group)
    users = {
        "owner": owner,
        "author": author,
        "staff": staff,
        "other-client": django_user_model.objects.create_user("other-client", "other@example.com", "pw"),
        "inactive": django_user_model.objects.create_user("inactive", "in@example.com", "pw"),
    }
    users["inactive"].groups.add(group)  # an author once: refused for being inactive, not for access
    export_id = api.create_export(owner, [COURSE_A])
    api.run_now(export_id)
    upload_id = api.create_upload(
        owner,
        manifest([{"course_id": COURSE_A, "file": "a.pdf"}]),
        io.BytesIO(content_zip(PAYLOAD)),
        UploadMode.UPLOAD,
    )
    api.run_now(upload_id)
    backup_id = backups.start_backup(owner, [COURSE_A])  # run at once (see items_in_this_thread)
    restore_id = restores.create_restore(
        owner, [(COURSE_A, storage.export_name(COURSE_A))], [], {"dry_run": True, "overwrite": True}
    )
    exported = api.get_process(owner, ProcessKind.EXPORT, export_id)
    uploaded = api.get_process(owner, ProcessKind.UPLOAD, upload_id)
    ids = {
        "export": export_id,
        "upload": upload_id,
        "backup": backup_id,
        "course": COURSE_A,
        "restore": restore_id,
        "export_file": download_token(exported.successful_uploads[COURSE_A]),
        "export_task": str(BulkItem.objects.get(process__process_id=export_id).task_id),
        "report_file": download_token(uploaded.report_url),
    }
    own = {
        "owner": {
            ProcessKind.EXPORT: [export_id],
            ProcessKind.UPLOAD: [upload_id],
            ProcessKind.BACKUP: [backup_id],
            ProcessKind.RESTORE: [restore_id],
        }
    }
    for name, user in users.items():
        if name != "owner":
            own[name] = {
                kind: [BulkProcess.objects.create(kind=kind, owner=user).process_id.hex]
                for kind in ProcessKind
            }
    # Deactivated after it made its processes and got a bearer token (deactivating revokes nothing).
    ids["inactive_bearer"] = bearer_for(users["inactive"], "inactive-client")
    users["inactive"].is_active = False
    users["inactive"].save()
    return World(users, ids, own, olx_root, local_storage)


def owner_jwt(world: World, **changes) -> str:
    """The owner's real JWT, or a copy of it re-signed with some changes (see ``reforge``)."""
    token = jwt_for(world.users["owner"])
    return reforge(token, **changes) if changes else token


# Caller -> the Authorization header it sends (None: no header), made only when its cell runs.
AUTHORIZATION = {
    "anonymous": lambda w: None,
    "jwt-malformed": lambda w: "JWT not.a.jwt",
    "jwt-alg-none": lambda w: "JWT " + owner_jwt(w, algorithm="none"),
    "jwt-bad-signature": lambda w: "JWT " + owner_jwt(w, key=foreign_rsa_key()),
    "jwt-expired": lambda w: "JWT " + jwt_for(w.users["owner"], expires_in=-60),
    "jwt-wrong-issuer": lambda w: "JWT " + owner_jwt(w, iss="https://evil.example.com/oauth2"),
    "jwt-wrong-audience": lambda w: "JWT " + owner_jwt(w, aud="some-other-service"),
    "bearer-unknown": lambda w: "Bearer " + uuid.uuid4().hex,
    "inactive": lambda w: "JWT " + jwt_for(w.users["inactive"]),
    "bearer-inactive": lambda w: "Bearer " + w.ids["inactive_bearer"],
    "bearer-other-client": lambda w: "Bearer " + bearer_for(w.users["other-client"], "other-client"),
    "author": lambda w: "JWT " + jwt_for(w.users["author"]),
    "staff": lambda w: "JWT " + jwt_for(w.users["staff"]),
    "owner": lambda w: "JWT " + owner_jwt(w),
    "bearer-owner": lambda w: "Bearer " + bearer_for(w.users["owner"], "owner-client"),
}


def client_as(world: World, caller: str) -> APIClient:
    client = APIClient()
    header = AUTHORIZATION[caller](world)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client


# What a request left behind -----------------------------------------------------------------


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in (root.rglob("*") if root.exists() else [])
        if p.is_file()
    }


def snapshot(world: World) -> dict:
    return {
        "processes": set(BulkProcess.objects.values_list("process_id", flat=True)),
        "items": BulkItem.objects.count(),
        "storage": files(world.storage_root),
        "courses": files(world.olx_root),
    }


def tarballs(listing: dict) -> dict:
    return {name: stat for name, stat in listing.items() if name.endswith(".tar.gz")}


def new_processes(before: dict) -> list[BulkProcess]:
    return list(BulkProcess.objects.exclude(process_id__in=before["processes"]).select_related("owner"))


def comparable(body: dict, process_id: str) -> dict:
    """A status envelope without what changes per call (time, message ids) or names the id asked."""
    params = {k: v for k, v in body["params"].items() if k not in ("resmsgid", "msgid")}
    params["errmsg"] = (params["errmsg"] or "").replace(process_id, "<id>")
    return {**body, "ts": None, "params": params}


@dataclass
class Cell:
    """One cell of the matrix: who calls what, in which world, and the world before the call."""

    world: World
    caller: str
    endpoint: str
    before: dict
    client: APIClient

    @property
    def username(self) -> str:
        return CALLER_USER[self.caller]


def check_refused(cell: Cell, response):
    assert response.json()["error_code"] in (
        "not_authenticated",
        "authentication_failed",
        "permission_denied",
    )
    assert snapshot(cell.world) == cell.before, "a refused request changed something"


def check_export(cell: Cell, response):
    body = response.json()
    (process,) = new_processes(cell.before)
    assert process.owner.username == cell.username
    outcomes = set(process.items.values_list("status", "error"))
    if response.status_code == 200:
        assert list(body["successful_uploads"]) == [COURSE_A] and body["failed_uploads"] == {}
        assert outcomes == {(ItemStatus.SUCCESS, "")}
    else:  # refused per course: the request is recorded, every course failed, nothing exported
        assert body["processId"] == process.process_id.hex
        assert body["successful_uploads"] == {} and body["upload_task_ids"] == {}  # no task made
        assert body["failed_uploads"] == {COURSE_A: api.PERMISSION_DENIED}
        assert outcomes == {(ItemStatus.FAILED, api.PERMISSION_DENIED)}
        assert tarballs(files(cell.world.storage_root)) == tarballs(cell.before["storage"])


def check_upload(cell: Cell, response):
    body = response.json()
    if response.status_code == 200:
        (process,) = new_processes(cell.before)
        assert process.process_id.hex == body["result"]["processId"]
        assert process.owner.username == cell.username
        assert process.status == ProcessStatus.COMPLETED
        assert list(process.items.values_list("status", flat=True)) == [ItemStatus.SUCCESS]
    else:
        message = f"You do not have Studio write access to {COURSE_A}."
        assert body["result"]["errors"] == [{"row": 2, "column": "course_id", "message": message}]
        assert snapshot(cell.world) == cell.before, "a refused upload stored something"


def check_status(cell: Cell, response):
    process_id = cell.world.ids[ENDPOINTS[cell.endpoint][1]]
    if response.status_code == 200:
        assert response.json()["result"]["processId"] == process_id
        assert response.json()["result"]["status"] == ProcessStatus.COMPLETED
        return
    # Another user's process is answered exactly as an id that never existed.
    random_id = uuid.uuid4().hex
    unknown = cell.client.get(cell.world.url(cell.endpoint).replace(process_id, random_id))
    assert unknown.status_code == 404
    assert comparable(response.json(), process_id) == comparable(unknown.json(), random_id)
    assert response.json()["result"] == {} and response.json()["params"]["err"] == "PROCESS_NOT_FOUND"


def check_cancel(cell: Cell, response):
    """Canceling an ended process changes nothing; anyone but its owner gets the unknown id's 404."""
    process_id = cell.world.ids[ENDPOINTS[cell.endpoint][1]]
    assert snapshot(cell.world) == cell.before
    if response.status_code == 200:
        assert response.json()["result"]["status"] == ProcessStatus.COMPLETED
        return
    random_id = uuid.uuid4().hex
    unknown = cell.client.post(cell.world.url(cell.endpoint).replace(process_id, random_id))
    assert unknown.status_code == 404
    assert comparable(response.json(), process_id) == comparable(unknown.json(), random_id)


def check_backup(cell: Cell, response):
    """Always accepted (202); a course the caller may not author fails, and nothing of it is stored."""
    (process,) = new_processes(cell.before)
    assert process.process_id.hex == response.json()["processId"]
    assert process.owner.username == cell.username
    (item,) = process.items.all()
    if cell.username in ("author", "staff", "owner"):
        assert process.status == ProcessStatus.COMPLETED
        assert item.status == ItemStatus.SUCCESS and item.result["outcome"] in ("exported", "unchanged")
    else:  # its one course failed: the process ended Failed, at once
        assert process.status == ProcessStatus.FAILED
        assert (item.status, item.error) == (ItemStatus.FAILED, api.PERMISSION_DENIED)
        assert tarballs(files(cell.world.storage_root)) == tarballs(cell.before["storage"])


def check_versions(cell: Cell, response):
    (version,) = response.json()["versions"]  # the owner's backup: the only one of course A
    (item,) = BulkProcess.objects.get(process_id=cell.world.ids["backup"]).items.all()
    assert version["key"] == item.result["key"] and version["sha256"] == item.result["sha256"]


def check_export_task(cell: Cell, response):
    """Only the owner sees its task's state; anyone else gets the unknown id's 404."""
    assert snapshot(cell.world) == cell.before
    if response.status_code == 200:
        assert response.json()["state"] == "Succeeded"
        return
    unknown = cell.client.get(
        cell.world.url(cell.endpoint).replace(cell.world.ids["export_task"], str(uuid.uuid4()))
    )
    assert response.json() == unknown.json() == {"detail": "Task not found"}


def check_content_versions(cell: Cell, response):
    """A course the caller may not export is missing, as an unknown one; nothing is written."""
    assert snapshot(cell.world) == cell.before
    body = response.json()
    if cell.username in ("owner", "author", "staff"):
        assert list(body["versions"]) == [COURSE_A] and body["missing"] == []
    else:
        assert body == {"versions": {}, "missing": [COURSE_A]}


def check_restore(cell: Cell, response):
    """A restore is recorded for its caller; only a caller who may write the course passes its checks."""
    (process,) = new_processes(cell.before)
    assert process.process_id.hex == response.json()["processId"]
    assert process.owner.username == cell.username
    outcomes = list(process.items.values_list("status", "error"))
    if cell.username in ("owner", "author", "staff"):
        assert outcomes == [(ItemStatus.SUCCESS, "")]
    else:
        assert outcomes == [(ItemStatus.FAILED, restores.PERMISSION_DENIED)]
    assert files(cell.world.olx_root) == cell.before["courses"]


def check_list(cell: Cell, response):
    kind = next(kind for kind in ProcessKind if cell.endpoint.startswith(kind.value))
    result = response.json()["result"]
    mine = cell.world.own[cell.username][kind]
    assert [u["processId"] for u in result[f"{kind}s"]] == mine
    assert (result["count"], result["userId"]) == (len(mine), cell.world.users[cell.username].id)


def check_download(cell: Cell, response):
    """The link is a capability: whoever holds it gets the file, whatever Authorization says."""
    name = storage.unsign_download_token(cell.world.ids[ENDPOINTS[cell.endpoint][1]])
    assert b"".join(response.streaming_content) == (cell.world.storage_root / name).read_bytes()


def check_storage(cell: Cell, response):
    assert response.json()["storage"] == f"folder {cell.world.storage_root}"
    assert snapshot(cell.world) == cell.before  # its probe object is gone again


CHECKS = {
    "export": check_export,
    "upload": check_upload,
    "export-status": check_status,
    "upload-status": check_status,
    "process-status": check_status,
    "export-status-list": check_list,
    "upload-status-list": check_list,
    "download-export": check_download,
    "download-report": check_download,
    "export-cancel": check_cancel,
    "upload-cancel": check_cancel,
    "backup": check_backup,
    "backup-status": check_status,
    "backup-status-list": check_list,
    "backup-versions": check_versions,
    "backup-cancel": check_cancel,
    "restore": check_restore,
    "restore-status": check_status,
    "restore-status-list": check_list,
    "restore-cancel": check_cancel,
    "export-task": check_export_task,
    "export-versions": check_content_versions,
    "storage-check": check_storage,
}


@pytest.mark.parametrize("endpoint, caller, expected", matrix())
def test_authorization_matrix(world, endpoint, caller, expected):
    """One cell: the caller's request to the endpoint is answered ``expected``, with its effects only."""
    cell = Cell(world, caller, endpoint, snapshot(world), client_as(world, caller))
    response = send(cell.client, endpoint, world)
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert response.status_code in allowed, getattr(response, "content", b"")[:300]
    (check_refused if response.status_code in DENY else CHECKS[endpoint])(cell, response)


def test_matrix_covers_every_route():
    """A route added to urls.py without a column here fails: the matrix is the whole API."""
    assert {route for route, _ in ENDPOINTS.values()} == {p.name for p in urls.urlpatterns}


def test_re_signed_jwt_is_refused_for_its_change_alone(world):
    """Control of the forged rows: the owner's claims re-signed with the project's key are accepted."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="JWT " + owner_jwt(world, iat=int(time.time()) - 5))
    assert client.get(world.url("export-status")).status_code == 200


# A course author of course A, and course B --------------------------------------------------


def add_course(olx_root: Path, course_id: str) -> Path:
    """A copy of the sample course as another org, number and run (course.xml names the course)."""
    key = CourseKey.from_string(course_id)
    target = olx_root / f"{key.org}-{key.course}-{key.run}"
    shutil.copytree(olx_root / "sample", target)
    (target / "course.xml").write_text(
        f'<course url_name="{key.run}" org="{key.org}" course="{key.course}"/>\n'
    )
    (target / "course" / "2026.xml").rename(target / "course" / f"{key.run}.xml")
    policies = target / "policies" / "2026"
    policy = json.loads((policies / "policy.json").read_text())
    (policies / "policy.json").write_text(json.dumps({f"course/{key.run}": policy.pop("course/2026")}))
    policies.rename(target / "policies" / key.run)
    return target


@pytest.fixture
def course_b(olx_root) -> Path:
    return add_course(olx_root, COURSE_B)


EXPORT_URL = "/api/courses/v0/export/"
UPLOAD_URL = "/api/courses/v0/content/bulk/upload"


def test_export_of_a_foreign_course_reads_as_a_missing_one(
    client_for, author, staff, course_b, local_storage
):
    """Author A is told of course B exactly what it is told of a course that does not exist."""
    client = client_for(author)
    answers = {c: client.post(EXPORT_URL, {"courses": [c]}, format="json") for c in (COURSE_B, MISSING)}
    assert {c: a.status_code for c, a in answers.items()} == {COURSE_B: 400, MISSING: 400}
    assert answers[COURSE_B].json()["failed_uploads"] == {COURSE_B: api.PERMISSION_DENIED}
    assert answers[MISSING].json()["failed_uploads"] == {MISSING: api.PERMISSION_DENIED}
    by_org = [client.post(EXPORT_URL, {"org": org}, format="json") for org in ("OtherOrg", "NoSuchOrg")]
    assert [a.status_code for a in by_org] == [400, 400] and by_org[0].json() == by_org[1].json()
    assert not tarballs(files(local_storage))
    assert set(BulkItem.objects.values_list("status", flat=True)) == {ItemStatus.FAILED}

    # Staff, who may know, are told the truth: B exports, the other is not found.
    staff_answer = client_for(staff).post(EXPORT_URL, {"courses": [COURSE_B, MISSING]}, format="json").json()
    assert list(staff_answer["successful_uploads"]) == [COURSE_B]
    assert staff_answer["failed_uploads"] == {MISSING: "Course not found."}


def test_upload_into_a_foreign_course_reads_as_a_missing_one(
    client_for, author, staff, olx_root, course_b, local_storage
):
    """Each refused row names its course and nothing else: B's row reads as the missing course's."""
    before = files(olx_root), files(local_storage)
    answer = client_for(author).post(
        UPLOAD_URL, upload_form(COURSE_A, COURSE_B, MISSING), format="multipart", HTTP_OPERATION_MODE="upload"
    )
    assert answer.status_code == 400
    errors = {e["row"]: e for e in answer.json()["result"]["errors"]}
    assert set(errors) == {3, 4}  # row 2 (course A) is fine: refused per row, not as a whole
    assert {**errors[3], "message": errors[3]["message"].replace(COURSE_B, "<course>")} == {
        **errors[4],
        "message": errors[4]["message"].replace(MISSING, "<course>"),
        "row": 3,
    }
    assert (files(olx_root), files(local_storage)) == before
    assert not BulkProcess.objects.exists()

    # Staff, who may know, are told the truth: only the missing course's row is refused.
    staff_answer = client_for(staff).post(
        UPLOAD_URL, upload_form(COURSE_B, MISSING), format="multipart", HTTP_OPERATION_MODE="upload"
    )
    assert staff_answer.status_code == 400
    assert [e["message"] for e in staff_answer.json()["result"]["errors"]] == [f"Course {MISSING} not found."]


# The signed download link -------------------------------------------------------------------


@pytest.fixture
def stored_file(local_storage) -> tuple[str, str]:
    """A file in the local storage, and the token of the URL the app hands out for it."""
    name = storage.object_name("exports", "some.tar.gz")
    with storage.open_writer(name, "application/gzip") as out:
        out.write(b"the file")
    return name, download_token(storage.download_url(name))


def _tampered(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


BAD_LINKS = {
    "tampered": lambda name, token: _tampered(token),
    "truncated": lambda name, token: token.rsplit(":", 1)[0],
    "bare file name": lambda name, token: name.rsplit("/", 1)[-1],
    "signed for another purpose": lambda name, token: signing.dumps(name),  # same secret, other salt
    "no such file": lambda name, token: download_token(storage.download_url(name + ".gone")),
}


@pytest.mark.parametrize("case", BAD_LINKS)
def test_bad_download_link_is_not_found(client_for, stored_file, case):
    """Only the exact token the app signed opens a file; every other one reads as an unknown link."""
    token = BAD_LINKS[case](*stored_file)
    answer = client_for(None).get(reverse("exportbulk:download", kwargs={"token": token}))
    assert answer.status_code == 404
    assert answer.json() == {
        "developer_message": "Unknown or expired download link.",
        "error_code": "not_found",
    }


def test_download_link_expires_and_needs_no_authentication(client_for, staff, stored_file, settings):
    """A signed link is a capability: no Authorization needed (a bad one is ignored) until it expires."""
    url = reverse("exportbulk:download", kwargs={"token": stored_file[1]})
    garbage = client_for(None)
    garbage.credentials(HTTP_AUTHORIZATION="JWT not.a.jwt")
    for client in (client_for(None), garbage, client_for(staff)):
        answer = client.get(url)
        assert answer.status_code == 200 and b"".join(answer.streaming_content) == b"the file"
    settings.EXPORTBULK_URL_EXPIRY_SECONDS = -1
    assert client_for(staff).get(url).status_code == 404


def test_deactivated_users_client_gets_no_token(django_user_model):
    """A client acts as its user: once the user is deactivated, its client credentials stop working."""
    user = django_user_model.objects.create_user("retired", "retired@example.com", "pw")
    bearer_for(user, "retired-client")  # works while the user is active
    form = {"grant_type": "client_credentials", "client_id": "retired-client"}
    form["client_secret"] = "retired-client-secret"
    user.is_active = False
    user.save()
    refused = APIClient().post("/oauth2/access_token/", form)
    assert refused.status_code == 401 and "access_token" not in refused.json()
