"""Bad disaggregation flags fail at once with a message that says what to change."""

from __future__ import annotations

import pytest

from ponder import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--disagg", "1X1D"], "--disagg expects XPYD"),
        (["--disagg", "1P1D", "--data-parallel-size", "2"], "do not combine"),
        (["--prefill-workers", "1"], "--decode-workers"),
        (["--disagg", "1P0D"], ">= 1"),
        (["--role", "prefill"], "needs --kv-connector"),
        (["--role", "router"], "--prefill-url"),
        (["--disagg", "1P1D", "--disagg-min-uncached-tokens", "-1"], ">= 0"),
    ],
)
def test_bad_flags_exit_2_with_a_clear_message(argv, message, capsys):
    assert cli.main(["serve", *argv]) == 2
    assert message in capsys.readouterr().err
