"""The production settings the README documents are the ones the deploy files carry, and
`manage.py check --deploy` has nothing to warn about with exactly them."""

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import RequestFactory

from relayapi.clients import client_address
from relayapi.middleware import request_id_for

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
    # The container listens on TCP (deploy/Containerfile sets BIND), so its proxy is an address,
    # not the Unix socket (README "Who is the proxy").
    documented.pop("BIND")
    documented.pop("RELAYAPI_TRUSTED_PROXIES")

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


# --- who is the proxy ---


def test_the_documented_path_trusts_only_the_socket_nginx_alone_may_open(settings):
    """The finding: gunicorn on 127.0.0.1:8000 with RELAYAPI_TRUSTED_PROXIES=127.0.0.1 made every
    local process the proxy: it could forge the audit log's addresses, dodge the lockout and
    lock a real user out. Documented now: a Unix socket, and only it trusted."""
    documented = readme_production_settings()
    settings.RELAYAPI_TRUSTED_PROXIES = documented["RELAYAPI_TRUSTED_PROXIES"].split(",")
    settings.RELAYAPI_TRUST_REQUEST_ID = documented["RELAYAPI_TRUST_REQUEST_ID"] == "1"
    headers = {"HTTP_X_FORWARDED_FOR": "192.0.2.1", "HTTP_X_REQUEST_ID": "chosen"}
    local_process = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", **headers)
    through_the_socket = RequestFactory().get("/", REMOTE_ADDR="", **headers)

    assert documented["BIND"] == "unix:/run/relayapi/gunicorn.sock"
    assert (client_address(local_process), request_id_for(local_process) == "chosen") == (
        "127.0.0.1",
        False,
    )
    assert (client_address(through_the_socket), request_id_for(through_the_socket)) == (
        "192.0.2.1",
        "chosen",
    )


def gunicorn_config(env):
    """What gunicorn makes of deploy/gunicorn.conf.py in `env`: its bind addresses, trusted
    forwarders, umask, and the hashing slot directory it hands the workers."""
    script = textwrap.dedent(
        """
        import json, os, runpy
        from gunicorn.config import Config
        values = runpy.run_path("deploy/gunicorn.conf.py")
        cfg = Config()
        for name, value in values.items():
            if name in cfg.settings:
                cfg.set(name, value)
        print(json.dumps({
            "address": cfg.address,
            "forwarded_allow_ips": cfg.forwarded_allow_ips,
            "umask": oct(cfg.umask),
            "slot_dir": os.environ["RELAYAPI_PASSWORD_HASH_SLOT_DIR"],
        }))
        """
    )
    inherited = {
        k: v for k, v in os.environ.items() if k == "PATH" or k.startswith(("PYTHON", "LANG"))
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**inherited, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gunicorn_under_systemd_binds_the_socket_and_believes_no_tcp_peer():
    # systemd sets RUNTIME_DIRECTORY for RuntimeDirectory=relayapi.
    config = gunicorn_config({**env_file_settings(), "RUNTIME_DIRECTORY": "/run/relayapi"})

    assert config == {
        "address": ["/run/relayapi/gunicorn.sock"],
        "forwarded_allow_ips": [],
        "umask": "0o117",
        "slot_dir": "/run/relayapi/password-slots",
    }


def test_gunicorn_believes_x_forwarded_proto_from_the_trusted_proxy_addresses_by_default():
    config = gunicorn_config({"RELAYAPI_TRUSTED_PROXIES": "unix,10.0.0.5", "BIND": "0.0.0.0:8000"})
    overridden = gunicorn_config(
        {"RELAYAPI_TRUSTED_PROXIES": "10.0.0.5", "FORWARDED_ALLOW_IPS": ""}
    )

    assert config["address"] == [["0.0.0.0", 8000]]
    assert config["forwarded_allow_ips"] == ["10.0.0.5"]
    assert overridden["forwarded_allow_ips"] == []


def test_the_unit_makes_the_socket_directory_for_its_group_and_nginx_proxies_to_it():
    unit = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/systemd/relayapi.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    socket = readme_production_settings()["BIND"].removeprefix("unix:")
    readme = (ROOT / "README.md").read_text()
    template = (ROOT / "deploy/nginx/relayapi.conf.template").read_text()

    assert (unit["User"], unit["Group"]) == ("relayapi", "relayapi")
    assert Path(socket).parent == Path("/run") / unit["RuntimeDirectory"]
    assert unit["RuntimeDirectoryMode"] == "0750"
    assert (
        "usermod -a -G relayapi www-data" in (ROOT / "deploy/systemd/relayapi.service").read_text()
    )
    assert f"RELAYAPI_UPSTREAM=unix:{socket} " in readme
    assert f"RELAYAPI_UPSTREAM=unix:{socket} " in template


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
