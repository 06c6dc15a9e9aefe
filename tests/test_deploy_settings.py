"""The production settings the README documents are the ones the deploy files carry, and
`manage.py check --deploy` has nothing to warn about with exactly them."""

import os
import re
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent


def readme_production_settings():
    """NAME -> value of the README's "Settings." block under "Deployment"."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*Settings\.\*\*.*?```sh\n(.*?)```", readme, re.S)
    assert block, "README.md has no **Settings.** block with a ```sh list"
    return dict(
        word.split("=", 1) for line in block[1].splitlines() for word in shlex.split(line, True)
    )


def env_file_settings():
    """NAME -> value of deploy/systemd/relayapi.env (comments and blank lines left out)."""
    lines = (ROOT / "deploy/systemd/relayapi.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def compose_app_environment():
    """NAME -> value of the app service's environment in deploy/compose.yaml."""
    compose = (ROOT / "deploy/compose.yaml").read_text()
    app = re.search(r"\n  app:\n.*?\n    environment:\n((?:      [^\n]*\n)+)", compose, re.S)
    assert app, "deploy/compose.yaml has no app service with an environment"
    return dict(line.strip().split(": ", 1) for line in app[1].splitlines())


def is_placeholder(value):
    """A value every deployment fills in itself: a secret or a password."""
    return "..." in value or "change-me" in value


def same(documented, carried):
    return documented == carried or (is_placeholder(documented) and is_placeholder(carried))


def test_the_systemd_env_file_carries_every_documented_setting():
    documented, carried = readme_production_settings(), env_file_settings()

    assert {
        name: (value, carried.get(name))
        for name, value in documented.items()
        if not same(value, carried.get(name, ""))
    } == {}


def test_compose_passes_every_documented_setting_with_the_documented_default():
    documented, carried = readme_production_settings(), compose_app_environment()
    # The container listens on all of its interfaces (deploy/Containerfile sets BIND).
    documented.pop("BIND")

    assert sorted(set(documented) - set(carried)) == []
    defaults = {
        name: re.fullmatch(r"\$\{" + name + r":-(.*)\}", carried[name])
        for name, value in documented.items()
        if not is_placeholder(value) and "example" not in value
    }
    assert {
        name: (documented[name], carried[name])
        for name, default in defaults.items()
        if default is None or default[1] != documented[name]
    } == {}


def production_environment(**overrides):
    """The README's production settings with real secrets in place of the placeholders, and
    nothing inherited from the test run's own configuration."""
    settings = readme_production_settings()
    settings.update(
        SECRET_KEY=secrets.token_urlsafe(50),
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
    )
    settings.update(overrides)
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in settings
        and name not in {"DEBUG", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith(("RELAYAPI_", "SECURE_"))
    }
    return {**inherited, **{k: v for k, v in settings.items() if v is not None}}


def check_deploy(env):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = check_deploy(production_environment())

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


@pytest.mark.parametrize(
    ("left_out", "warning"),
    [
        ("SECURE_HSTS_SECONDS", "security.W004"),
        ("SECURE_SSL_REDIRECT", "security.W008"),
        ("SESSION_COOKIE_SECURE", "security.W012"),
        ("CSRF_COOKIE_SECURE", "security.W016"),
        ("SECURE_HSTS_PRELOAD", "security.W021"),
    ],
)
def test_check_deploy_warns_when_an_https_setting_is_left_out(left_out, warning):
    result = check_deploy(production_environment(**{left_out: None}))

    assert result.returncode != 0
    assert warning in result.stderr


def test_a_weak_secret_key_stops_check_deploy_before_it_starts():
    result = check_deploy(production_environment(SECRET_KEY="django-insecure-" + "k" * 50))

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr
