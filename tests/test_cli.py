"""The `ponder` command: every subcommand mounts, and one that cannot import (a missing optional
extra) leaves the others working."""

from __future__ import annotations

import sys

import pytest

from ponder import cli


def test_every_subcommand_mounts() -> None:
    parser = cli.build_parser()
    assert parser.epilog is None
    for name in cli.SUBCOMMAND_MODULES:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0


def test_a_missing_extra_hides_only_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ponder.cli.serve", None)  # importing it now fails
    parser = cli.build_parser()
    args = parser.parse_args(["eval", "--tasks", "arithmetic", "--limit", "1"])
    assert args.command == "eval" and args.limit == 1
    assert parser.epilog.startswith("Not available here (install the extra): serve (")
    with pytest.raises(SystemExit):
        parser.parse_args(["serve"])


def test_a_ponder_error_exits_2_with_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["generate", "--max-tokens", "0", "hi"]) == 2
    assert "ponder generate: error:" in capsys.readouterr().err
