"""The lifewatch command: --help everywhere, and copied argument lists that match their modules."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from lifewatch.cli import COMMANDS, build_parser


def _sub(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return sub.choices[name]


def _shape(p: argparse.ArgumentParser) -> list[tuple]:
    return sorted((a.dest, tuple(a.option_strings), a.default, tuple(a.choices or ()), a.required, a.nargs)
                  for a in p._actions if not isinstance(a, argparse._HelpAction))  # noqa: SLF001


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name):
    out = subprocess.run([sys.executable, "-m", "lifewatch.cli", name, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "usage: lifewatch" in out.stdout, out.stderr


@pytest.mark.parametrize(
    "name,module,func",
    [
        ("record", "ingest.record", "add_arguments"),
        ("replay", "simulators.replay", "add_arguments"),
        ("backtest", "detectors.backtest.cli", "add_arguments"),
        ("notify", "alerts.notify.worker", "configure_parser"),
    ],
)
def test_copied_arguments_match_the_modules(name, module, func):
    """cli.py copies these argument lists so that importing heavy modules never slows the command down."""
    import importlib

    ref = argparse.ArgumentParser()
    getattr(importlib.import_module(module), func)(ref)
    assert _shape(_sub(name)) == _shape(ref)
