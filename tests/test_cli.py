"""The `ponder` command keeps working when an optional extra (server, bench) is not installed."""

from __future__ import annotations

import pytest

from ponder import cli


def test_a_missing_extra_hides_only_its_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    def _add_server_commands(subparsers) -> None:
        raise ImportError("No module named 'starlette'")

    monkeypatch.setattr(cli, "_SUBCOMMANDS", [cli._add_eval, _add_server_commands])
    parser = cli.build_parser()
    args = parser.parse_args(["eval", "--tasks", "arithmetic", "--limit", "1"])
    assert args.command == "eval" and args.limit == 1
    assert "server_commands (No module named 'starlette')" in parser.epilog
    with pytest.raises(SystemExit):
        parser.parse_args(["serve"])
