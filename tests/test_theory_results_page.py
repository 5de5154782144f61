"""docs/results/theory.md: every command on the page is a valid ``lchannel theory`` command, each
PNG shown exists, is modest in size and is written by the command stated under it, and one
command rerun prints the numbers the page quotes."""

from __future__ import annotations

import re
from pathlib import Path

from test_theory_cli import _line, _parser, _run

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "results" / "theory.md"


def _commands(text: str) -> list[str]:
    return re.findall(r"`lchannel theory ([^`]+)`", text)


def test_every_command_on_the_page_parses_and_every_png_is_made_by_its_command():
    text = PAGE.read_text()
    commands = _commands(text)
    assert len(commands) >= 25
    for cmd in commands:
        args = _parser().parse_args(["theory", *cmd.split()])
        assert args.theory_command in ("trajectory", "vector-field")
    images = re.findall(r"!\[[^\]]*\]\((theory/[^)]+\.png)\)", text)
    assert len(images) == 9  # one per analysis figure: paper 1 Figures 10-14, paper 2 Figures 15-18
    outs = {cmd.split("--out ")[1].split()[0] for cmd in commands}
    for image in images:
        path = PAGE.parent / image
        assert path.is_file() and 20_000 < path.stat().st_size < 300_000, image
        assert f"docs/results/{image}" in outs, image


def test_figure10_command_prints_what_the_page_quotes(monkeypatch, capsys):
    from lchannel.theory import plots

    monkeypatch.setattr(plots, "save", lambda fig, path, **kw: (plots.plt.close(fig), path)[1])
    cmd = next(c for c in _commands(PAGE.read_text()) if "p1-figure10.png" in c)
    assert _run(["theory", *cmd.split(), "--no-discrete"]) == 0
    out = capsys.readouterr().out
    assert "t_max = 15 (auto" in out
    assert re.search(r"t = 7\.41\d*, converged", _line(out, "reached fixed point"))
    assert float(_line(out, "|reached - predicted|").split("=")[1]) < 1e-8
    assert "| 7.41 (15) |" in PAGE.read_text()
