"""tools/install.py: pip's configuration, as `pip config list` prints it, passed on to uv."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("install_tool", ROOT / "tools" / "install.py")
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

# written by hand in the format of `pip config list` (section.key=repr(value) per line)
LISTING = """\
:env:.cert='/etc/ssl/certs/ca-certificates.crt'
:env:.disable-pip-version-check='1'
:env:.find-links='/opt/wheels'
global.find-links='/somewhere/else'
global.extra-index-url='file:///opt/pypi/simple file:///opt/pypi-more/simple'
global.constraint='/etc/xdg/pip/constraints.txt'
install.index-url='https://mirror.example/simple'
global.index-url='https://ignored.example/simple'
freeze.exclude='pip'
"""


def test_pip_settings_take_pip_precedence():
    settings = install.pip_settings(LISTING)
    assert settings == {
        "cert": "/etc/ssl/certs/ca-certificates.crt",
        "disable-pip-version-check": "1",
        "find-links": "/opt/wheels",                        # the variable over [global]
        "extra-index-url": "file:///opt/pypi/simple file:///opt/pypi-more/simple",
        "constraint": "/etc/xdg/pip/constraints.txt",
        "index-url": "https://mirror.example/simple",       # [install] over [global]
    }                                                        # [freeze] is not pip install's


def test_uv_gets_every_setting_that_changes_what_is_installed():
    options, environ = install.uv_arguments(install.pip_settings(LISTING))
    pairs = list(zip(options[::2], options[1::2]))
    assert pairs[0] == ("--index-strategy", "unsafe-best-match")  # pip's choice among indexes
    assert sorted(pairs[1:]) == sorted([
        ("--constraint", "/etc/xdg/pip/constraints.txt"),
        ("--extra-index-url", "file:///opt/pypi/simple"),
        ("--extra-index-url", "file:///opt/pypi-more/simple"),
        ("--find-links", "/opt/wheels"),
        ("--index-url", "https://mirror.example/simple"),
    ])
    assert environ == {"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}


def test_the_settings_are_read_from_pip_itself():
    # pip's own listing, of variables set here (the machine's files may add more)
    environ = {**os.environ, "PIP_FIND_LINKS": "/a /b", "PIP_INDEX_URL": "https://mirror.example/simple"}
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             env=environ, check=True).stdout
    settings = install.pip_settings(listing)
    assert settings["find-links"] == "/a /b" and settings["index-url"] == "https://mirror.example/simple"
    options, _ = install.uv_arguments({"find-links": settings["find-links"]})
    assert options[2:] == ["--find-links", "/a", "--find-links", "/b"]


def test_no_configuration_gives_uv_its_defaults():
    assert install.uv_arguments(install.pip_settings("")) == (["--index-strategy", "unsafe-best-match"], {})


def test_a_setting_uv_cannot_honour_sends_the_install_to_pip():
    settings = install.pip_settings("global.no-binary=':all:'\n")
    with pytest.raises(install.Unsupported, match="no-binary"):
        install.uv_arguments(settings)


def test_pip_is_used_when_asked(monkeypatch):
    calls = []
    monkeypatch.setenv(install.INSTALLER_ENV, "pip")
    monkeypatch.setattr(install.subprocess, "run", lambda args, **kw: calls.append(args) or
                        type("Done", (), {"returncode": 0})())
    assert install.main(["/venv/bin/python", ".[dev]"]) == 0
    assert calls == [["/venv/bin/python", "-m", "pip", "install", "--quiet", "-e", ".[dev]"]]


def test_a_failure_of_uv_falls_back_to_pip_with_one_line(monkeypatch, capsys):
    calls = []
    monkeypatch.delenv(install.INSTALLER_ENV, raising=False)
    monkeypatch.setattr(install, "install_with_uv", lambda python, target: "uv exited with status 2")
    monkeypatch.setattr(install.subprocess, "run", lambda args, **kw: calls.append(args) or
                        type("Done", (), {"returncode": 0})())
    assert install.main(["/venv/bin/python", ".[dev]"]) == 0
    assert calls == [["/venv/bin/python", "-m", "pip", "install", "--quiet", "-e", ".[dev]"]]
    assert capsys.readouterr().err == "install: uv exited with status 2; installing with pip instead\n"


def test_an_unknown_installer_is_one_clear_error(monkeypatch, capsys):
    monkeypatch.setenv(install.INSTALLER_ENV, "poetry")
    monkeypatch.setattr(install.subprocess, "run", lambda *a, **kw: pytest.fail("nothing may be installed"))
    assert install.main(["/venv/bin/python", ".[dev]"]) == 2
    assert capsys.readouterr().err == "install: $CMN_INSTALLER must be 'uv' or 'pip' (or unset), got 'poetry'\n"
