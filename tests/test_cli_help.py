"""Every command and every option of `fercam` says in its --help what it does."""

from __future__ import annotations

import argparse

from fercam.apps.cli import build_parser, main


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_option_of_every_command_has_help() -> None:
    parser = build_parser()
    missing = [a.dest for a in parser._actions if not a.help]
    for name, command in _subcommands(parser).items():
        missing += [f"{name} {a.option_strings or a.dest}" for a in command._actions if not a.help]
    assert missing == []


def test_help_prints_the_texts(capsys) -> None:
    assert main(["analyze", "--help"]) == 0
    text = capsys.readouterr().out
    assert "the folder for the results" in text and "analyse every N-th frame" in text
    assert main(["devices", "--help"]) == 0
    assert "webcams that open" in capsys.readouterr().out
