"""``lchannel algorithms``: the one algorithm registry as a table.

Every algorithm name the toolkit knows is one entry of :data:`lchannel.channels.REGISTRY`:
its label, the other names it goes by, whether the explicit engine runs it (and why not),
which converter mode serves it in ``lchannel.torch.convert`` (and why not), its look in
figures and where it comes from.  ``--name`` shows one entry in full.
"""

from __future__ import annotations

import argparse

from ..channels import REGISTRY, resolve
from .tables import text_table


def _rows() -> list[list[str]]:
    rows = []
    for name, a in REGISTRY.items():
        rows.append([name, ", ".join(a.aliases) or "", a.label, "yes" if a.cls is not None else "no",
                     a.converter or "no", a.summary])
    return rows


def _entry(name: str) -> str:
    a, _ = resolve(name)
    engine = f"yes ({a.cls.__name__}" + (f", {a.fixed}" if a.fixed else "") + ")" if a.cls else f"no: {a.engine_refusal}"
    conv = f"yes (mode {a.converter!r}, lchannel.torch.modes)" if a.converter else f"no: {a.converter_refusal}"
    lines = [f"{a.name}: {a.label}", f"  {a.summary}", f"  source: {a.source or '-'}",
             f"  aliases: {', '.join(a.aliases) or '-'}", f"  explicit engine: {engine}",
             f"  converter: {conv}", f"  default options: {a.defaults or '-'}",
             f"  look: colour {a.color or '(from the name)'}, marker {a.marker or '(from the name)'}",
             f"  no-f' form: {'-' if a.name == 'top' else a.name + '-nof'}"]
    return "\n".join(lines)


def cmd_algorithms(args) -> int:
    if args.name:
        try:
            print(_entry(args.name))
        except ValueError as err:
            raise SystemExit(f"lchannel algorithms: --name: {err}")
        return 0
    print(text_table(_rows(), ["name", "aliases", "label", "engine", "converter", "what the error travels through"],
                     numbers_right=False))
    print("\nEvery name but 'top' also has a no-f' form '<name>-nof'. `lchannel algorithms --name NAME` shows one "
          "entry; docs/extending.md shows how to add one.")
    return 0


def register(sub) -> None:
    p = sub.add_parser("algorithms", help="the algorithm registry: every name, its aliases, engine and converter "
                                          "support", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--name", default=None, help="show one entry in full (a name or an alias)")
    p.set_defaults(func=cmd_algorithms)
