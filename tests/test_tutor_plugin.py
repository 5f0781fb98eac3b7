"""
The Tutor plugin, driven through the real ``tutor`` command in temporary project roots.

Tutor renders its environment without Docker. For ``tutor local do ...`` a stand-in ``docker``
comes first on PATH: it records each job (service and script) that Tutor would run in a
container, so the tests see exactly what an operator's machine would execute.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tutor_exportbulk.__about__ import __version__

TUTOR = Path(sys.executable).with_name("tutor")
BUCKET = "acme-course-exports"
KEY_ID = "AKIAEXPORTBULKTEST"
AWS_SECRET = "aws-secret-that-must-stay-in-settings"
SETTINGS_FILES = [
    f"apps/openedx/settings/{service}/{kind}.py"
    for service in ("lms", "cms")
    for kind in ("production", "development")
]
FAKE_DOCKER = f"""#!{sys.executable}
import json, os, sys
if "ls" in sys.argv:  # `docker compose ls`: no project is running
    print("[]")
elif "run" in sys.argv:  # `docker compose ... run --rm <service>-job sh -e -c <script>`
    with open(os.environ["FAKE_DOCKER_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps([sys.argv[-5].removesuffix("-job"), sys.argv[-1]]) + "\\n")
"""


@dataclass
class Project:
    """A Tutor project root, and the ``tutor`` command run against it."""

    root: Path
    environ: dict[str, str]

    def tutor(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(TUTOR), *args], env=self.environ, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"tutor {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def value(self, name: str) -> str:
        return self.tutor("config", "printvalue", name).stdout.strip()

    def rendered(self, path: str) -> str:
        return (self.root / "env" / path).read_text(encoding="utf-8")

    def jobs(self, *do_args: str) -> list[tuple[str, str]]:
        """The (job service, script) pairs that `tutor local do ...` runs, in order."""
        log = Path(self.environ["FAKE_DOCKER_LOG"])
        log.unlink(missing_ok=True)
        self.tutor("local", "do", *do_args)
        lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
        return [tuple(json.loads(line)) for line in lines]

    def copy(self, destination: Path) -> Project:
        shutil.copytree(self.root, destination / "root")
        environ = dict(self.environ, TUTOR_ROOT=str(destination / "root"))
        environ["FAKE_DOCKER_LOG"] = str(destination / "docker.log")
        return Project(destination / "root", environ)


def new_project(base: Path, *plugins: str, settings: dict[str, str]) -> Project:
    bin_dir = base / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "docker").write_text(FAKE_DOCKER, encoding="utf-8")
    (bin_dir / "docker").chmod(0o755)
    environ = {name: value for name, value in os.environ.items() if not name.startswith("TUTOR_")}
    environ.update(
        TUTOR_ROOT=str(base / "root"),
        TUTOR_PLUGINS_ROOT=str(base / "plugins"),
        FAKE_DOCKER_LOG=str(base / "docker.log"),
        PATH=f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}",
    )
    project = Project(base / "root", environ)
    project.tutor("plugins", "enable", *plugins)
    project.tutor("config", "save", *[f"--set={name}={value}" for name, value in settings.items()])
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    """exportbulk alone, configured for AWS the way the README tells operators to."""
    settings = {
        "EXPORTBULK_BUCKET": BUCKET,
        "EXPORTBULK_AWS_ACCESS_KEY_ID": KEY_ID,
        "EXPORTBULK_AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    }
    return new_project(tmp_path_factory.mktemp("aws"), "exportbulk", settings=settings)


@pytest.fixture(scope="module")
def minio_project(tmp_path_factory) -> Project:
    """exportbulk next to tutor-minio, with no exportbulk setting at all."""
    return new_project(tmp_path_factory.mktemp("minio"), "exportbulk", "minio", settings={})


def settings_values(source: str) -> dict[str, object]:
    """The EXPORTBULK_* values a settings module ends with (literal assignments; last one wins)."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.startswith("EXPORTBULK_"):
                values[name] = ast.literal_eval(node.value)
    return values


def commands(script: str) -> list[list[str]]:
    """The argv of each command of a job script (continuation lines joined, comments dropped)."""
    lines = script.replace("\\\n", "").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def manage_py(script: str, command: str) -> list[str]:
    """The arguments of the one `./manage.py lms <command>` call of a script."""
    (argv,) = [argv[3:] for argv in commands(script) if argv[:3] == ["./manage.py", "lms", command]]
    return argv


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# Settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SETTINGS_FILES)
def test_settings_of_lms_and_cms_carry_the_configuration(project, path):
    source = project.rendered(path)
    compile(source, path, "exec")
    values = settings_values(source)
    assert values["EXPORTBULK_BUCKET"] == BUCKET
    assert values["EXPORTBULK_AWS_ACCESS_KEY_ID"] == KEY_ID
    assert values["EXPORTBULK_AWS_SECRET_ACCESS_KEY"] == AWS_SECRET
    # Without tutor-minio the defaults mean AWS itself, and the app's own limits.
    assert values["EXPORTBULK_S3_ENDPOINT_URL"] == ""
    assert values["EXPORTBULK_URL_EXPIRY_SECONDS"] == 7 * 24 * 3600
    assert values["EXPORTBULK_MAX_COURSES_PER_REQUEST"] == 500
    assert values["EXPORTBULK_PUBLIC_URLS"] is False


def test_settings_values_are_python_literals_whatever_their_characters(project, tmp_path):
    awkward = project.copy(tmp_path)
    awkward.tutor("config", "save", "--set", 'EXPORTBULK_KEY_PREFIX=it\'s "exports"\\daily')
    assert awkward.value("EXPORTBULK_KEY_PREFIX") == 'it\'s "exports"\\daily'
    values = settings_values(awkward.rendered("apps/openedx/settings/cms/production.py"))
    assert values["EXPORTBULK_KEY_PREFIX"] == 'it\'s "exports"\\daily'


def bulk_routes(project) -> dict[str, dict]:
    tree = ast.parse(project.rendered("apps/openedx/settings/cms/production.py"))
    (update,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == "EXPLICIT_QUEUES.update"
    ]
    # Evaluate the rendered routing against the names edx-platform's CMS settings define.
    routes: dict[str, dict] = {}
    namespace = {"EXPLICIT_QUEUES": routes, "LOW_PRIORITY_QUEUE": "edx.cms.core.low"}
    eval(compile(ast.Expression(update), "cms/production.py", "eval"), namespace)
    return routes


def test_cms_workers_consume_the_queue_of_the_bulk_tasks(project):
    routes = bulk_routes(project)
    queues = {route["queue"] for name, route in routes.items() if name.startswith("plugin_app.tasks.")}
    assert set(routes) == {"plugin_app.tasks.run_item", "plugin_app.tasks.run_process"}

    services = yaml.safe_load(project.rendered("local/docker-compose.prod.yml"))["services"]
    (queue_option,) = [arg for arg in services["cms-worker"]["command"] if arg.startswith("--queues=")]
    assert queues <= set(queue_option.removeprefix("--queues=").split(","))


def test_a_dedicated_queue_routes_every_bulk_task_to_it(project, tmp_path):
    dedicated = project.copy(tmp_path)
    dedicated.tutor("config", "save", "--set", "EXPORTBULK_CELERY_QUEUE=edx.cms.core.exportbulk")
    assert {route["queue"] for route in bulk_routes(dedicated).values()} == {"edx.cms.core.exportbulk"}
    values = settings_values(dedicated.rendered("apps/openedx/settings/cms/production.py"))
    assert values["EXPORTBULK_CELERY_QUEUE"] == "edx.cms.core.exportbulk"
    assert values["EXPORTBULK_MAX_ACTIVE_PROCESSES_PER_USER"] == 5


# Image ---------------------------------------------------------------------------------------


def python_requirements_stage(dockerfile: str) -> str:
    stage = dockerfile.split("FROM python AS python-requirements", 1)[1]
    return stage.split("\nFROM ", 1)[0]


def test_image_installs_the_distribution_at_the_plugin_version(project):
    dockerfile = project.rendered("build/openedx/Dockerfile")
    install = f'$PIP_COMMAND install --no-deps "tutor-exportbulk=={__version__}" "isal>=1.6"'
    assert dockerfile.count(install) == 1
    # The venv of that stage is what the LMS, CMS and their workers run.
    assert install in python_requirements_stage(dockerfile)


def test_mounted_checkout_replaces_the_released_distribution(project, tmp_path):
    checkout = tmp_path / "src" / "tutor-exportbulk"
    checkout.mkdir(parents=True)
    dev = project.copy(tmp_path)
    dev.tutor("mounts", "add", str(checkout))

    dockerfile = dev.rendered("build/openedx/Dockerfile")
    assert "tutor-exportbulk==" not in dockerfile
    assert '$PIP_COMMAND install -e "/mnt/tutor-exportbulk"' in dockerfile
    compose = yaml.safe_load(dev.rendered("local/docker-compose.yml"))
    for service in ("lms", "cms"):
        assert f"{checkout}:/mnt/tutor-exportbulk:z" in compose["services"][service]["volumes"]


# Init and provisioning -----------------------------------------------------------------------


def test_init_creates_the_service_user_and_its_oauth_client(project):
    (job,) = project.jobs("init", "--limit", "exportbulk")
    service, script = job
    assert service == "lms"
    subprocess.run(["sh", "-n", "-c", script], check=True)

    username, email = project.value("EXPORTBULK_SERVICE_USERNAME"), project.value("EXPORTBULK_SERVICE_EMAIL")
    user_args = manage_py(script, "manage_user")
    assert user_args[:2] == [username, email]
    assert "--staff" in user_args and "--unusable-password" in user_args
    assert "--superuser" not in user_args

    app_args = manage_py(script, "create_dot_application")
    assert option(app_args, "--grant-type") == "client-credentials"
    assert option(app_args, "--client-id") == project.value("EXPORTBULK_OAUTH2_CLIENT_ID")
    assert option(app_args, "--client-secret") == project.value("EXPORTBULK_OAUTH2_CLIENT_SECRET")
    secret = project.value("EXPORTBULK_OAUTH2_CLIENT_SECRET")
    assert len(secret) >= 32 and secret.isalnum()  # generated: not guessable
    assert option(app_args, "--scopes") == "user_id"
    # Running init again updates the same application (name and user) instead of skipping it.
    assert "--update" in app_args and "--skip-authorization" in app_args
    assert app_args[-1] == username


def test_init_fixes_a_changed_email_before_manage_user_would_refuse_it(project):
    ((_, script),) = project.jobs("init", "--limit", "exportbulk")
    argvs = commands(script)
    fix = next(i for i, argv in enumerate(argvs) if argv[:3] == ["./manage.py", "lms", "shell"])
    create = next(i for i, argv in enumerate(argvs) if argv[:3] == ["./manage.py", "lms", "manage_user"])
    assert fix < create
    code = option(argvs[fix], "-c")
    compile(code, "fix-email", "exec")
    email = project.value("EXPORTBULK_SERVICE_EMAIL")
    assert f".exclude(email='{email}').update(email='{email}')" in code


def test_provisioning_runs_after_the_lms_migrations(project):
    scripts = [script for service, script in project.jobs("init") if service == "lms"]
    migrate = next(i for i, script in enumerate(scripts) if "./manage.py lms migrate" in script)
    provision = next(i for i, script in enumerate(scripts) if '--client-id "exportbulk"' in script)
    assert migrate < provision


def test_provision_command_reruns_the_init_script(project):
    assert project.tutor("local", "do", "exportbulk-provision", "--help").stdout.startswith("Usage:")
    assert project.jobs("exportbulk-provision") == project.jobs("init", "--limit", "exportbulk")


def test_oauth_secret_is_generated_once(project, tmp_path):
    secret = project.value("EXPORTBULK_OAUTH2_CLIENT_SECRET")
    assert len(secret) >= 24
    again = project.copy(tmp_path)
    again.tutor("config", "save")
    assert again.value("EXPORTBULK_OAUTH2_CLIENT_SECRET") == secret
    saved = yaml.safe_load((again.root / "config.yml").read_text(encoding="utf-8"))
    assert saved["EXPORTBULK_OAUTH2_CLIENT_SECRET"] == secret


def files_holding(project: Project, secret: str) -> set[str]:
    env = project.root / "env"
    return {
        path.relative_to(env).as_posix()
        for path in env.rglob("*")
        if path.is_file() and secret in path.read_text(encoding="utf-8", errors="ignore")
    }


def test_secrets_are_rendered_only_where_they_are_needed(project):
    # The AWS secret: the LMS and CMS settings; the OAuth2 client secret: nowhere (the init job
    # is rendered when it runs, and the client CLI reads it from config.yml).
    assert files_holding(project, AWS_SECRET) == set(SETTINGS_FILES)
    assert files_holding(project, project.value("EXPORTBULK_OAUTH2_CLIENT_SECRET")) == set()


# With tutor-minio ----------------------------------------------------------------------------


def test_minio_serves_as_storage_without_any_setting(minio_project):
    minio_url = f"http://{minio_project.value('MINIO_HOST')}"
    key_id = minio_project.value("OPENEDX_AWS_ACCESS_KEY")
    secret = minio_project.value("MINIO_AWS_SECRET_ACCESS_KEY")
    for path in SETTINGS_FILES:
        values = settings_values(minio_project.rendered(path))
        # tutor dev has no Caddy in front of MinIO: it is reached on its own port.
        expected = minio_url + (":9000" if path.endswith("development.py") else "")
        assert values["EXPORTBULK_S3_ENDPOINT_URL"] == expected, path
        assert values["EXPORTBULK_BUCKET"] == "exportbulk"
        assert values["EXPORTBULK_AWS_ACCESS_KEY_ID"] == key_id
        assert values["EXPORTBULK_AWS_SECRET_ACCESS_KEY"] == secret


def test_init_creates_the_bucket_in_minio(minio_project):
    jobs = dict(minio_project.jobs("init", "--limit", "exportbulk"))
    assert set(jobs) == {"lms", "minio"}
    argvs = commands(jobs["minio"])
    assert ["mc", "mb", "--ignore-existing", "minio/exportbulk"] in argvs
    alias = next(argv for argv in argvs if argv[:3] == ["mc", "config", "host"])
    assert alias[5:8] == [
        "http://minio:9000",
        minio_project.value("OPENEDX_AWS_ACCESS_KEY"),
        minio_project.value("OPENEDX_AWS_SECRET_ACCESS_KEY"),
    ]


def test_plugin_cli_is_registered(project):
    assert "export" in project.tutor("exportbulk", "--help").stdout


# Backups -------------------------------------------------------------------------------------


def cronjobs(project: Project) -> list[dict]:
    documents = yaml.safe_load_all(project.rendered("k8s/jobs.yml"))
    return [doc for doc in documents if doc and doc["kind"] == "CronJob"]


def test_backup_schedule_renders_a_cronjob_running_the_backup_command(project, tmp_path):
    scheduled = project.copy(tmp_path)
    scheduled.tutor("config", "save", "--set", "EXPORTBULK_BACKUP_SCHEDULE=0 3 * * *")
    (cronjob,) = cronjobs(scheduled)
    spec = cronjob["spec"]
    assert cronjob["apiVersion"] == "batch/v1" and cronjob["metadata"]["name"] == "exportbulk-backup"
    assert spec["schedule"] == "0 3 * * *" and spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == scheduled.value("DOCKER_IMAGE_OPENEDX")
    assert shlex.split(container["args"][0]) == [
        "./manage.py",
        "cms",
        "exportbulk_backup",
        "--all",
        "--changed-only",
    ]
    assert container["command"] == ["sh", "-e", "-c"]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["DJANGO_SETTINGS_MODULE"] == "cms.envs.tutor.production"
    # The same settings as Tutor's own cms-job: the config maps of the LMS and CMS settings.
    config_maps = {volume["configMap"]["name"] for volume in pod["volumes"]}
    assert config_maps == {"openedx-settings-lms", "openedx-settings-cms", "openedx-config"}
    mounts = {mount["name"] for mount in container["volumeMounts"]}
    assert mounts == {volume["name"] for volume in pod["volumes"]}
    # Tutor's k8s job runner still finds its own jobs among the documents.
    jobs = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(scheduled.rendered("k8s/jobs.yml"))
        if doc["kind"] == "Job"
    ]
    assert {"lms-job", "cms-job"} <= set(jobs)


def test_clearing_the_schedule_suspends_the_cronjob_instead_of_dropping_it(project, tmp_path):
    """Tutor does not delete a CronJob that stops being rendered: an empty schedule (the default)
    must still render it, suspended, with a schedule Kubernetes accepts."""
    (default,) = cronjobs(project)
    assert default["spec"]["suspend"] is True and default["spec"]["schedule"] == "0 3 * * *"
    cleared = project.copy(tmp_path)
    cleared.tutor("config", "save", "--set", "EXPORTBULK_BACKUP_SCHEDULE=15 2 * * 1")
    assert cronjobs(cleared)[0]["spec"]["suspend"] is False
    for empty in ("", "  "):
        cleared.tutor("config", "save", "--set", f"EXPORTBULK_BACKUP_SCHEDULE={empty}")
        (cronjob,) = cronjobs(cleared)
        assert cronjob["metadata"]["name"] == "exportbulk-backup"
        assert cronjob["spec"]["suspend"] is True and cronjob["spec"]["schedule"] == "0 3 * * *"


def test_backup_do_command_runs_the_management_command_in_the_cms(project):
    for runner in ("local", "k8s"):
        assert project.tutor(runner, "do", "exportbulk-backup", "--help").stdout.startswith("Usage:")
    assert project.jobs("exportbulk-backup") == [("cms", "./manage.py cms exportbulk_backup --changed-only")]
    jobs = project.jobs(
        "exportbulk-backup", "--org", "Acme Org", "--course", "course-v1:A+B+C", "--no-changed-only"
    )
    ((service, script),) = jobs
    assert service == "cms"
    assert commands(script) == [
        [
            "./manage.py",
            "cms",
            "exportbulk_backup",
            "--no-changed-only",
            "--org",
            "Acme Org",
            "--course",
            "course-v1:A+B+C",
        ]
    ]


def test_backup_retention_reaches_the_settings(project, tmp_path):
    values = settings_values(project.rendered("apps/openedx/settings/cms/production.py"))
    assert (values["EXPORTBULK_BACKUP_KEEP"], values["EXPORTBULK_BACKUP_MAX_AGE_DAYS"]) == (7, 0)
    assert values["EXPORTBULK_SERVICE_USERNAME"] == "exportbulk"


def test_restore_settings_reach_the_settings(project, tmp_path):
    strict = project.copy(tmp_path)
    strict.tutor(
        "config",
        "save",
        "--set",
        "EXPORTBULK_RESTORE_BLOCKING_LEVEL=ERROR",
        "--set",
        "EXPORTBULK_RESTORE_MAX_MEMBERS=500",
    )
    values = settings_values(strict.rendered("apps/openedx/settings/cms/production.py"))
    assert (values["EXPORTBULK_RESTORE_BLOCKING_LEVEL"], values["EXPORTBULK_RESTORE_MAX_MEMBERS"]) == (
        "ERROR",
        500,
    )
    assert values["EXPORTBULK_RESTORE_MAX_UPLOAD_BYTES"] == 2 * 1024**3
    assert values["EXPORTBULK_RESTORE_MAX_TEXT_FILE_BYTES"] == 10 * 1024**2
    assert values["EXPORTBULK_RESTORE_MAX_ITEMS_RUNNING_PER_USER"] == 2
