"""Import rules that keep the two rooms apart, checked on the source and in a fresh interpreter.

The runtime (every module of ``dashboard/`` outside ``dashboard/web/``) is what worker
processes load: it must never load Flask, Jinja, Werkzeug or htmx-flask, directly or
through another module of ours. Relative imports are resolved, so ``from . import x`` and
``from .web import y`` count. The checks take the package root as an argument, and the
last tests plant violations in a copy of the package to show that each check can fail.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dashboard"
WEB_ONLY = {"flask", "jinja2", "werkzeug", "htmx_flask"}
#: Module size budget (lines), from the style guide.
MAX_LINES = 400


def module_name(package: Path, path: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(package, p): p for p in sorted(package.rglob("*.py"))}


def imports(package: Path, path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved; for
    ``from pkg import name`` both ``pkg`` and ``pkg.name``)."""
    me = module_name(package, path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[:len(base) - drop] if drop else base
                anchor = ".".join(base)
                source = f"{anchor}.{node.module}" if node.module else anchor
            else:
                source = node.module or ""
            found.add(source)
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (an import of ``a.b.c`` also loads ``a.b``)."""
    mods = modules(package)
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for imported in imports(package, path):
            parts = imported.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in mods)
        parts = name.split(".")
        targets -= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # itself and its parents, loaded first

        edges[name] = targets
    return edges


def runtime_modules(package: Path) -> list[str]:
    web = f"{package.name}.web"
    return [m for m in modules(package) if m != web and not m.startswith(web + ".")]


def web_leaks(package: Path) -> dict[str, set[str]]:
    """Runtime modules that import a web-only library or the web room, with what they import."""
    mods = modules(package)
    web = f"{package.name}.web"
    leaks: dict[str, set[str]] = {}
    for name in runtime_modules(package):
        bad = {i for i in imports(package, mods[name])
               if i.split(".")[0] in WEB_ONLY or i == web or i.startswith(web + ".")}
        if bad:
            leaks[name] = bad
    return leaks


def cycles(package: Path) -> list[list[str]]:
    """Import cycles among the package's modules (each reported once, as a path)."""
    edges = graph(package)
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def loaded_by_runtime(package_parent: Path, package: str = "dashboard") -> list[str]:
    """Import every runtime module in a fresh interpreter; the web-only modules that got loaded."""
    names = runtime_modules(package_parent / package)
    code = (f"import importlib, json, sys\nfor name in {names!r}:\n"
            f"    try:\n        importlib.import_module(name)\n    except ImportError:\n        pass\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(WEB_ONLY)!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=package_parent, capture_output=True, text=True,
                         timeout=60, check=True)
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


# --- the rules, on the real package ----------------------------------------------------

def test_runtime_never_imports_the_web_room_or_flask() -> None:
    assert web_leaks(PACKAGE) == {}


def test_importing_the_runtime_loads_no_flask_jinja_or_werkzeug() -> None:
    assert loaded_by_runtime(ROOT) == []


def test_no_import_cycles() -> None:
    assert cycles(PACKAGE) == []


def test_modules_stay_within_the_line_budget() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in modules(PACKAGE).items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_web_room_reaches_redis_only_through_the_runtime() -> None:
    """Web modules may catch redis-py's exceptions, but never import its client."""
    web = PACKAGE / "web"
    def client_imports(path: Path) -> list[str]:
        return sorted(i for i in imports(PACKAGE, path) if i.split(".")[0] == "redis"
                      and not i.startswith("redis.exceptions"))

    offenders = {module_name(PACKAGE, p): client_imports(p) for p in web.rglob("*.py")}
    assert {m: found for m, found in offenders.items() if found} == {}


def test_only_clients_builds_redis_clients() -> None:
    pattern = re.compile(r"\b(redis\.(Redis|StrictRedis)|Redis(Cluster)?\.from_url|RedisCluster|ConnectionPool)\(")
    offenders = [module_name(PACKAGE, p) for p in PACKAGE.rglob("*.py")
                 if p.name != "clients.py" and pattern.search(p.read_text())]
    assert offenders == []


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for path in [*PACKAGE.rglob("*.py"), ROOT / "app.py"]:
        if path.name == "config.py":
            continue
        text = path.read_text()
        if "os.environ" in text or "getenv(" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_only_keys_formats_queue_keys() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if p.name != "keys.py" and ('":wait"' in p.read_text() or "f\"{prefix}:" in p.read_text())]
    assert offenders == []


def test_only_scripts_runs_lua() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "scripts.py":
            continue
        text = path.read_text()
        assert "evalsha" not in text.lower() and "register_script" not in text and ".eval(" not in text, path.name


def test_templates_are_namespaced() -> None:
    """A host app's own templates (``base.html``, ``error.html``) can never replace ours."""
    templates = ROOT / "templates"
    outside = [str(p.relative_to(templates)) for p in templates.rglob("*.html")
               if p.relative_to(templates).parts[0] != "bullpen"]
    assert outside == []


# --- the checks can fail ---------------------------------------------------------------

@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A copy of the package to plant violations in."""
    shutil.copytree(PACKAGE, tmp_path / "dashboard", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "dashboard"


def plant(path: Path, line: str) -> None:
    text = path.read_text()
    anchor = "from __future__ import annotations\n"
    path.write_text(text.replace(anchor, anchor + line + "\n", 1))


def test_a_relative_web_import_in_the_worker_is_caught(copy: Path) -> None:
    plant(copy / "worker.py", "from .web import htmx")
    assert web_leaks(copy) == {"dashboard.worker": {"dashboard.web", "dashboard.web.htmx"}}
    assert "flask" in loaded_by_runtime(copy.parent)


def test_a_planted_flask_import_is_caught(copy: Path) -> None:
    plant(copy / "queue.py", "import flask  # noqa")
    assert web_leaks(copy) == {"dashboard.queue": {"flask"}}
    assert "flask" in loaded_by_runtime(copy.parent)


def test_a_planted_cycle_is_caught(copy: Path) -> None:
    plant(copy / "keys.py", "from . import queue  # noqa")
    assert any("dashboard.keys" in cycle and "dashboard.queue" in cycle for cycle in cycles(copy))
