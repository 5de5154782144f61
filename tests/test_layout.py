"""The package's floors and circles (issue 28): every module imports only from its own
floor or the floors below it, and no two modules import each other, directly or around a
circle (function-level imports included; ``if TYPE_CHECKING:`` blocks are annotations, not
imports).  Read from the source with ``ast``, so the test sees what a reader sees."""

import ast
from pathlib import Path

import lchannel

ROOT = Path(lchannel.__file__).parent
# Lowest first; a module may import from its floor and every floor before it.
FLOORS = [("plugins",), ("data",), ("engine",), ("channels",), ("run",), ("report",), ("population",),
          ("experiments", "torch", "theory"), ("cli", "compat", "__init__")]
FLOOR_OF = {name: i for i, names in enumerate(FLOORS) for name in names}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ["lchannel", *p.relative_to(ROOT).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def _imports(mods) -> dict[str, set[str]]:
    """module -> the lchannel modules it imports (a name imported from a package counts as
    the submodule when there is one)."""
    edges: dict[str, set[str]] = {}
    for m, (p, is_pkg) in mods.items():
        pkg = m if is_pkg else m.rpartition(".")[0]
        tree = ast.parse(p.read_text())
        typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                       and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                t = ".".join(base + ([node.module] if node.module else []))
                targets = {f"{t}.{a.name}" if f"{t}.{a.name}" in mods else t for a in node.names}
            elif isinstance(node, ast.Import):
                targets = {a.name for a in node.names}
            else:
                continue
            edges.setdefault(m, set()).update(t for t in targets if t.startswith("lchannel") and t != m)
    return edges


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOOR_OF[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_has_a_floor_and_imports_only_downwards():
    mods = _modules()
    for m in mods:
        assert (m.split(".") + ["__init__"])[1] in FLOOR_OF, f"{m}: add its folder to FLOORS (and README's Layout)"
    # ``from .. import __version__`` (the store records it) is the one import of the top.
    upward = sorted(f"{a} -> {t}" for a, ts in _imports(mods).items() for t in ts
                    if t in mods and t != "lchannel" and _floor(t) > _floor(a))
    assert upward == []


def test_no_import_circles():
    mods = _modules()
    # Package __init__ files re-export their modules; the circles that matter are between modules.
    graph = {a: {t for t in ts if t in mods and not mods[t][1]} for a, ts in _imports(mods).items()
             if not mods[a][1]}
    state: dict[str, int] = {}
    circles = []

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                circles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == []


def test_the_check_sees_a_circle_and_an_upward_import(tmp_path, monkeypatch):
    """The two checks are not vacuous: an engine module importing the run floor is both."""
    fake = tmp_path / "lchannel"
    for rel, text in {"__init__.py": "", "engine/__init__.py": "", "run/__init__.py": "",
                      "engine/a.py": "from ..run import b\n", "run/b.py": "from ..engine import a\n"}.items():
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(text)
    monkeypatch.setattr(__import__(__name__), "ROOT", fake)
    with __import__("pytest").raises(AssertionError, match=r"lchannel.engine.a -> lchannel.run.b"):
        test_every_module_has_a_floor_and_imports_only_downwards()
    with __import__("pytest").raises(AssertionError, match="lchannel.engine.a -> lchannel.run.b -> lchannel.engine.a"):
        test_no_import_circles()


def _function_level_imports(path: Path):
    """``(line, text)`` of every import inside a function of the module at ``path``."""
    lines = path.read_text().split("\n")
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner.lineno, lines


def test_function_level_imports_say_why():
    """An import inside a function is kept only for a heavy or optional dependency that most
    calls do not need (matplotlib, Ray, PyYAML, a C++ build, scipy's solvers): each says why
    in a ``# lazy:`` comment on its line or the line above; everything else imports at the top."""
    unexplained = []
    for m, (p, _) in sorted(_modules().items()):
        for lineno, lines in _function_level_imports(p):
            here, above = lines[lineno - 1], lines[lineno - 2].strip()
            if "# lazy:" not in here and not above.startswith("# lazy:"):
                unexplained.append(f"{p.relative_to(ROOT)}:{lineno}: {here.strip()}")
    assert not unexplained, "function-level imports without a '# lazy:' reason:\n" + "\n".join(unexplained)


def test_the_import_paths_of_before_the_re_layout_still_work():
    """Issue 28: code importing ``lchannel.nets``, ``lchannel.train``, ``lchannel.run`` ...
    keeps working, and gets the moved module itself (one class, one isinstance)."""
    import importlib

    from lchannel.compat import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    from lchannel.engine.nets import Network
    from lchannel.nets import Network as OldNetwork
    from lchannel.run import train_config
    from lchannel.run.single import train_config as new_train_config

    assert OldNetwork is Network and train_config is new_train_config
