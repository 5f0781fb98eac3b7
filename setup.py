"""Packaging for tutor-exportbulk: the Tutor plugin and the Django app it installs."""

import os

from setuptools import find_packages, setup

HERE = os.path.abspath(os.path.dirname(__file__))


def load_about() -> dict:
    about: dict = {}
    with open(os.path.join(HERE, "tutor_exportbulk", "__about__.py"), encoding="utf-8") as f:
        exec(f.read(), about)  # pylint: disable=exec-used
    return about


def load_readme() -> str:
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        return f.read()


ABOUT = load_about()

# What the Django app needs inside the openedx image (edx-platform already ships most of it,
# with its own pins; these ranges are the ones edx-platform runs).
APP_REQUIRES = [
    "Django>=5.2,<6.0",
    "djangorestframework>=3.15",
    "drf-spectacular>=0.27",
    "edx-django-utils>=7.0",
    "edx-drf-extensions>=10.0",
    "edx-opaque-keys>=2.10",
    "celery>=5.3",
    "boto3>=1.34",
    "django-storages>=1.14",
    "django-oauth-toolkit>=1.7",
    "defusedxml>=0.7",
    "isal>=1.6",
]
# What the Tutor plugin, the REST client and the CLI need on the operator's machine.
PLUGIN_REQUIRES = [
    "tutor>=22.0.0,<23.0.0",
    "click>=8.1",
    "jinja2>=3.1",
    "requests>=2.31",
    "requests-toolbelt>=1.0",
    "rich>=13.0",
]

setup(
    name="tutor-exportbulk",
    version=ABOUT["__version__"],
    url="https://github.com/tutor-exportbulk/tutor-exportbulk",
    license_expression="AGPL-3.0-only",
    license_files=["LICENSE.txt"],
    author="tutor-exportbulk developers",
    description="Bulk course export to S3 and bulk content upload for Open edX, as a Tutor plugin",
    long_description=load_readme(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tutor_exportbulk*", "plugin_app*"]),
    # Data files, named where they live (setuptools warns about data folders that are not packages when
    # they are pulled in by include_package_data; tests/test_package.py checks that the wheel holds them).
    package_data={
        "tutor_exportbulk": ["py.typed", "patches/*", "templates/**/*"],
        "plugin_app": ["standalone/courses/**/*"],
    },
    python_requires=">=3.11",
    install_requires=PLUGIN_REQUIRES + APP_REQUIRES,
    extras_require={
        # The standalone server: its production WSGI server, MySQL driver and Celery's Redis transport.
        # Learning Core is where v2 content libraries live: the standalone server migrates and uses it.
        "standalone": [
            "gunicorn>=27.0",
            "PyMySQL>=1.1",
            "redis>=5.0",
            "django-ratelimit>=4.1",
            'openedx-core==0.36.0; python_version < "3.12"',
            'openedx-core==1.15.2; python_version >= "3.12"',
        ],
        # The platform's own packages the tests run for real (`make install`), one line per Python
        # where they differ: the 1.x lines need Python 3.12.
        "platform": [
            'openedx-core==0.36.0; python_version < "3.12"',
            'openedx-core==1.15.2; python_version >= "3.12"',
            'openedx-authz==0.23.0; python_version < "3.12"',
            'openedx-authz==1.35.0; python_version >= "3.12"',
            'openedx-events==10.5.0; python_version < "3.12"',
            'openedx-events==11.2.0; python_version >= "3.12"',
            "edxval==5.0.1",
            "django-user-tasks==4.0.0",
            # edxval imports fs (edx-platform gets it through XBlock); the platform's pin.
            "fs==2.4.16",
            # edxval imports fs (through XBlock), which needs pkg_resources, gone from setuptools 81.
            'setuptools<81; python_version >= "3.12"',
        ],
        "test": [
            "pytest>=8.0",
            "hypothesis>=6.100",
            "schemathesis>=4.0,<5",
            "pytest-django>=4.8",
            "pytest-timeout>=2.3",
            "moto[server]>=5.0",
            "olxcleaner>=0.3",
            'openedx-core==0.36.0; python_version < "3.12"',
            'openedx-core==1.15.2; python_version >= "3.12"',
            "tutor-minio>=22.0.0,<23.0.0",
            "ruff>=0.6",
            # make test-types, test-package, changelog (see the Makefile)
            "mypy>=1.11",
            "django-stubs>=5.1",
            "djangorestframework-stubs>=3.15",
            "celery-types>=0.22",
            "botocore-stubs>=1.34",
            "types-defusedxml>=0.7",
            "types-PyMySQL>=1.1",
            "types-PyYAML>=6.0",
            "types-requests>=2.31",
            "build>=1.2",
            "twine>=6.1",
            "scriv>=1.5",
        ],
    },
    entry_points={
        "tutor.plugin.v1": ["exportbulk = tutor_exportbulk.plugin"],
        "cms.djangoapp": ["exportbulk = plugin_app.apps:ExportBulkConfig"],
        "lms.djangoapp": ["exportbulk = plugin_app.apps:ExportBulkConfig"],
        "console_scripts": [
            "exportbulk = tutor_exportbulk.cli:main",
            "exportbulk-standalone = plugin_app.standalone.cli:main",
        ],
    },
    classifiers=[
        "Framework :: Django",
        "Framework :: Django :: 5.2",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
    ],
)
