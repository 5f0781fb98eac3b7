"""
Restore as an attack path (issue 20): an author taking over another course, a tarball that breaks
every course for everyone, validators led outside the tarball, oversized files. Each test is an
attack that worked before its fix, replayed on real peers (an OLX root on disk, moto's S3 server).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import uuid

import pytest
from opaque_keys.edx.keys import CourseKey

from plugin_app import restores, tarball_checks
from plugin_app.backends import get_backend, olx_restore
from plugin_app.olx_checks import read_identity
from tests.builders import SAMPLE_COURSE_ID
from tests.tarballs import COURSE_XML, ROOT_XML, _add, course_tarball
from tests.test_restore import put, run, tree_digest

pytestmark = pytest.mark.django_db
SAMPLE = CourseKey.from_string(SAMPLE_COURSE_ID)
VICTIM_ID = "course-v1:Victim+V+2026"
VICTIM_XML = '<course url_name="2026" org="Victim" course="V"/>'


@pytest.fixture
def victim(olx_root):
    """Another course in the root, in a folder that sorts before the sample's."""
    folder = olx_root / "a-victim"
    shutil.copytree(olx_root / "sample", folder)
    (folder / "course.xml").write_text(VICTIM_XML)
    return folder


def keys_listed() -> list[str]:
    return [summary.course_id for summary in get_backend().list_courses()]


def extra_files(files: dict[str, bytes]):
    def add(tar: tarfile.TarFile) -> None:
        for name, data in files.items():
            _add(tar, f"t/{name}", data)

    return add


# 1. Taking over another course ----------------------------------------------------------------


@pytest.mark.parametrize(
    "course_xml",
    [
        "<course url_name='2026' org='Victim' course='V'/>",
        '<course url_name = "2026" org = "Victim" course = "V"/>',
        # 2a: well-formed as sent; a regular expression matching url_name="..." across the comment
        # made it malformed, and the course index then failed for every course.
        '<!-- url_name=" --><course url_name="2026" org="Victim" course="V"/><!-- " -->',
    ],
    ids=["single quotes", "spaces around =", "attribute inside a comment"],
)
def test_an_author_restoring_their_course_cannot_make_it_claim_another(
    course_xml, olx_root, victim, bucket, author
):
    victim_before = tree_digest(victim)
    put(bucket, "claim.tar.gz", course_tarball(course_xml=course_xml.encode()))

    outcome = run(SAMPLE_COURSE_ID, "claim.tar.gz", author, overwrite=True)

    assert (outcome.outcome, outcome.error) == (restores.RESTORED, "")
    assert read_identity(olx_root / "sample").key == SAMPLE
    assert sorted(keys_listed()) == [SAMPLE_COURSE_ID, VICTIM_ID]
    with get_backend().export_olx(CourseKey.from_string(VICTIM_ID)) as tree:
        assert tree.path == victim  # the victim's exports, uploads and backups read its own folder
    assert tree_digest(victim) == victim_before


def test_a_tree_that_reads_as_another_course_after_the_rewrite_is_not_swapped_in(
    olx_root, victim, bucket, staff, monkeypatch
):
    monkeypatch.setattr(olx_restore, "rewrite_identity", lambda course_dir, old, new: None)
    put(bucket, "claim.tar.gz", course_tarball(course_xml=VICTIM_XML.encode()))
    before = tree_digest(olx_root)

    outcome = run(SAMPLE_COURSE_ID, "claim.tar.gz", staff, overwrite=True)

    assert outcome.outcome == restores.FAILED
    assert outcome.error == (
        f"The restored tree reads as {VICTIM_ID}, not {SAMPLE_COURSE_ID}; nothing was changed."
    )
    assert tree_digest(olx_root) == before


def test_a_key_two_folders_claim_is_served_by_neither_and_logged(olx_root, bucket, staff, caplog):
    shutil.copytree(olx_root / "sample", olx_root / "copy")
    put(bucket, "t.tar.gz", course_tarball())

    with caplog.at_level(logging.ERROR, "plugin_app.backends.olx_directory"):
        assert SAMPLE_COURSE_ID not in keys_listed()
    assert not get_backend().course_exists(SAMPLE)
    assert f"Course {SAMPLE_COURSE_ID} is not served: the OLX folders copy, sample all claim it." in (
        caplog.messages
    )
    refused = run(SAMPLE_COURSE_ID, "t.tar.gz", staff, overwrite=True)
    assert refused.error == f"Several course folders claim {SAMPLE_COURSE_ID}; an operator must settle which."

    shutil.rmtree(olx_root / "copy")  # the operator settles it
    assert SAMPLE_COURSE_ID in keys_listed()


BROKEN = {
    "not-xml": ("<course", None),
    "bad-key": ('<course url_name="2026" org="a b" course="X"/>', None),
    "escaping-run": ('<course url_name="..:..:x" org="Esc" course="X"/>', None),
    "bad-policy": ('<course url_name="2026" org="Policy" course="X"/>', b"[]"),
}


@pytest.fixture
def broken_folders(olx_root):
    for name, (course_xml, policy) in BROKEN.items():
        shutil.copytree(olx_root / "sample", olx_root / name)
        (olx_root / name / "course.xml").write_text(course_xml)
        if policy is not None:
            (olx_root / name / "policies" / "2026" / "policy.json").write_bytes(policy)


def test_a_folder_the_index_cannot_read_is_skipped_and_logged_and_all_still_works(
    broken_folders, client_for, staff, local_storage, caplog, items_in_this_thread
):
    client = client_for(staff)
    with caplog.at_level(logging.WARNING, "plugin_app.backends.olx_directory"):
        exported = client.post("/api/courses/v0/export/", {"all": True}, format="json")
        backup = client.post("/api/courses/v0/backup/", {"all": True}, format="json")
        listed = client.get("/api/courses/v1/courses/")

    assert listed.status_code == 200, listed.content
    policy_course = next(c for c in listed.json()["results"] if c["course_id"] == "course-v1:Policy+X+2026")
    assert policy_course["name"] == "course-v1:Policy+X+2026"  # named by its key: its policy is unreadable

    assert exported.status_code == 200, exported.content
    policy_id = "course-v1:Policy+X+2026"  # its key is readable: listed, exported, backed up
    assert sorted(exported.json()["successful_uploads"]) == sorted([policy_id, SAMPLE_COURSE_ID])
    assert backup.status_code == 202, backup.content
    status = client.get(f"/api/courses/v0/backup/status/{backup.json()['processId']}").json()["result"]
    assert sorted(item["course_id"] for item in status["items"]) == sorted([policy_id, SAMPLE_COURSE_ID])
    logged = "\n".join(caplog.messages)
    for name in ("not-xml", "bad-key", "escaping-run"):
        assert f"OLX folder {name} is not served" in logged
    assert f"Course {policy_id}: its settings cannot be read" in logged


# 2. What the platform reads, blocking whatever olxcleaner's level ------------------------------


@pytest.mark.parametrize(
    "files, phrase",
    [
        ({"policies/2026/policy.json": b"{not json"}, "policies/2026/policy.json is not valid JSON"),
        ({"policies/2026/policy.json": b"[]"}, "policies/2026/policy.json must be a JSON object"),
        ({"policies/2026/policy.json": b'{"course/2026": []}'}, "must map <type>/<url_name> to objects"),
        ({"policies/2026/grading_policy.json": b"[]"}, "grading_policy.json must be a JSON object"),
        ({"policies/2026/grading_policy.json": b'{"GRADER": {}}'}, "needs GRADER to be a list of objects"),
        ({"policies/2026/grading_policy.json": b'{"GRADE_CUTOFFS": {"Pass": "half"}}'},
         "needs GRADE_CUTOFFS to be an object of numbers"),
        ({"policies/assets.json": b'{"a.png": 1}'}, "policies/assets.json must be a JSON object of objects"),
        ({"course/2026.xml": b"<chapter/>"}, "course/2026.xml is not a <course> element"),
        ({}, "course.xml names no valid course key"),
    ],
    ids=["policy not JSON", "policy []", "policy entry []", "grading []", "GRADER {}", "cutoff text",
         "asset entry", "run file not a course", "invalid key"],
)  # fmt: skip
def test_what_the_platform_reads_is_checked_whatever_the_olxcleaner_level(
    files, phrase, olx_root, bucket, staff, settings
):
    settings.EXPORTBULK_RESTORE_BLOCKING_LEVEL = ""  # olxcleaner's findings block nothing
    pointer = b'<course url_name="2026" org="a b" course="T"/>'  # an invalid key, when no file is given
    data = course_tarball(
        extra_files({k: v for k, v in files.items() if k != "course/2026.xml"}),
        course_xml=COURSE_XML if files else pointer,
        root_xml=files.get("course/2026.xml", ROOT_XML),
    )
    put(bucket, "bad.tar.gz", data)
    before = tree_digest(olx_root)

    outcome = run("course-v1:New+N+2026", "bad.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.FAILED and phrase in outcome.error, outcome.error
    assert tree_digest(olx_root) == before


def test_every_problem_the_platform_would_meet_is_reported_together(olx_root, bucket, staff):
    files = {"policies/2026/policy.json": b"[]", "policies/2026/grading_policy.json": b"{",
             "chapter/c2.xml": b'<chapter><sequential url_name="../../x"/></chapter>'}  # fmt: skip
    put(bucket, "bad.tar.gz", course_tarball(extra_files(files)))

    error = run("course-v1:New+N+2026", "bad.tar.gz", staff).error

    for phrase in ("policy.json must be a JSON object", "grading_policy.json is not valid JSON", "'../../x'"):
        assert phrase in error, error


# 3. Validators never see a path that leaves the course -----------------------------------------

ESCAPES = {
    "url_name with colons": '<chapter url_name="..:..:..:..:..:sample:chapter:first_steps"/>',
    "pointer with ..": '<chapter url_name="../../../../../sample/chapter/first_steps"/>',
    "absolute pointer": '<chapter url_name=":etc:passwd"/>',
    "html filename": '<html filename="..:..:..:..:..:sample:html:welcome"/>',
}


@pytest.mark.parametrize("pointer", ESCAPES.values(), ids=ESCAPES.keys())
def test_a_path_leaving_the_course_is_refused_before_olxcleaner_runs(
    pointer, olx_root, bucket, staff, monkeypatch
):
    def never(*args, **kwargs):
        raise AssertionError("olxcleaner ran on a tree with a path that leaves the course")

    monkeypatch.setattr(restores, "validate", never)
    root_xml = f'<course display_name="T"><chapter url_name="c1"/>{pointer}</course>'.encode()
    put(bucket, "escape.tar.gz", course_tarball(root_xml=root_xml))

    outcome = run("course-v1:New+N+2026", "escape.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.FAILED
    assert "(it must stay in the course)" in outcome.error and outcome.findings == [], outcome.error


def test_a_dry_run_never_shows_a_sibling_courses_content(olx_root, bucket, staff):
    """End to end, olxcleaner as it runs: the pointer reaches the sample course's chapter from the
    staging folder; its findings would name the sample's sequentials and display names."""
    pointer = ESCAPES["url_name with colons"]
    root_xml = f'<course display_name="T">{pointer}</course>'.encode()
    put(bucket, "escape.tar.gz", course_tarball(root_xml=root_xml))

    outcome = run("course-v1:New+N+2026", "escape.tar.gz", staff, dry_run=True)

    shown = f"{outcome.error} {outcome.findings}".replace(pointer, "")
    for secret in ("First Steps", "reading", "practice", "sample/chapter"):
        assert secret not in shown, shown
    assert outcome.outcome == restores.FAILED and "it must stay in the course" in shown


# 8. Per-file caps ------------------------------------------------------------------------------


def test_an_oversized_text_file_is_refused_unwritten_and_static_files_are_not_capped(
    olx_root, bucket, staff, settings, monkeypatch
):
    settings.EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES = 100_000
    big = b"<html>" + b"x" * 200_000 + b"</html>"
    written = []
    real_write = tarball_checks._write_member
    monkeypatch.setattr(
        tarball_checks,
        "_write_member",
        lambda tar, m, target: written.append(m.name) or real_write(tar, m, target),
    )
    put(bucket, "ok.tar.gz", course_tarball(extra_files({"static/big.html": big})))
    put(bucket, "big.tar.gz", course_tarball(extra_files({"html/big.html": big, "problem/p.xml": big})))

    assert run("course-v1:New+N+2026", "ok.tar.gz", staff, dry_run=True).outcome == restores.WOULD_RESTORE
    written.clear()
    outcome = run("course-v1:New+N+2026", "big.tar.gz", staff, dry_run=True)

    assert outcome.outcome == restores.FAILED
    for name in ("t/html/big.html", "t/problem/p.xml"):
        assert f"Member '{name}' is over 100000 bytes, the limit for a text file." in outcome.error
        assert name not in written


def test_xml_nested_too_deep_is_refused(olx_root, bucket, staff):
    deep = b"<problem>" + b"<div>" * 300 + b"</div>" * 300 + b"</problem>"
    put(bucket, "deep.tar.gz", course_tarball(extra_files({"problem/p.xml": deep})))

    outcome = run("course-v1:New+N+2026", "deep.tar.gz", staff, dry_run=True)

    assert "t/problem/p.xml nests elements more than 256 deep." in outcome.error


def test_a_users_restore_items_in_the_workers_are_bounded_across_processes(
    olx_root, bucket, staff, django_user_model, settings, monkeypatch
):
    """Five processes of sixteen items once meant eighty tarballs unpacked at once; now the owner's
    items wait in the database (holding no worker) until one of theirs ends or is canceled."""
    from celery import current_app

    from plugin_app import lifecycle, runners, tasks
    from plugin_app.data import UNFINISHED, ProcessKind, ProcessStatus
    from plugin_app.export import export_course
    from plugin_app.models import BulkItem, BulkProcess

    settings.EXPORTBULK_RESTORE_MAX_ITEMS_RUNNING_PER_USER = 2
    sent: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", lambda task, arg, countdown=None: sent.append(arg))
    source = export_course(SAMPLE)
    other = django_user_model.objects.create_user("other", "other@example.com", "pw", is_staff=True)

    def restore(user, name: str, count: int) -> str:
        pairs = [(f"course-v1:Lim+{name}{i}+2026", source) for i in range(count)]
        return restores.create_restore(user, pairs, [], {"dry_run": True})

    current_app.conf.task_always_eager = False  # as with a broker
    try:
        canceled, *mine = [restore(staff, f"P{p}", 3) for p in range(3)]
        theirs = restore(other, "O", 1)
    finally:
        current_app.conf.task_always_eager = True

    def in_flight(user) -> int:
        return BulkItem.objects.filter(id__in=sent, process__owner=user, status__in=UNFINISHED).count()

    assert len(sent) == 3 and in_flight(staff) == 2 and in_flight(other) == 1
    lifecycle.cancel(staff, ProcessKind.RESTORE, canceled)  # its two places go to the next process
    assert len(sent) == 5 and in_flight(staff) == 2
    done = 0
    while done < len(sent):
        runners.work_on_item(sent[done])
        done += 1
        assert in_flight(staff) <= 2

    assert sorted(sent) == sorted(set(sent))  # each sent once
    statuses = dict(BulkProcess.objects.values_list("process_id", "status"))
    assert {statuses[uuid.UUID(p)] for p in [*mine, theirs]} == {ProcessStatus.COMPLETED}
    assert statuses[uuid.UUID(canceled)] == ProcessStatus.CANCELED
