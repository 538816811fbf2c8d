"""`--help` is documentation: every command has a one-line summary and an example."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from evidence import __version__
from evidence.cli import cli


def commands():
    return sorted(cli.commands)


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_with_an_example(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert f"evidence {name}" in result.output
    assert cli.commands[name].get_short_help_str(limit=200).strip()


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_python_dash_m_runs_the_same_cli():
    out = subprocess.run([sys.executable, "-m", "evidence", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "fetch" in out.stdout and "export" in out.stdout


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["fetchh"])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    "argv0, quiet",
    [("evidence", True), ("/venv/bin/evidence", True), ("./evidence", True),
     ("/venv/bin/myevidence", False), ("python", False), ("", False)],
)  # fmt: skip
def test_only_the_evidence_command_loads_under_the_quiet_ctrl_c_handler(argv0, quiet):
    # Imported as a library, the package leaves signals alone (evidence/__init__.py).
    code = (
        "import signal, sys\n"
        f"sys.argv = [{argv0!r}]\n"
        "import evidence\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == str(not quiet)
