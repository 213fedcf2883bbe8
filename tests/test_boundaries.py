"""Import rules that keep the layers apart (checked on the source, not by convention)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dashboard"
#: The job runtime: worker processes load these and must never load Flask.
RUNTIME = ["__init__", "__main__", "config", "connection", "counts", "embedded", "errors", "job", "keys", "queue",
           "runtime", "scripts", "worker"]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_modules_never_import_flask() -> None:
    for name in RUNTIME:
        found = imported_modules(PACKAGE / f"{name}.py") & {"flask", "htmx_flask", "werkzeug", "jinja2"}
        assert not found, f"dashboard/{name}.py imports {found}"


def test_only_config_reads_the_environment() -> None:
    offenders = []
    for path in [*PACKAGE.glob("*.py"), ROOT / "app.py"]:
        if path.name == "config.py" or not path.exists():
            continue
        text = path.read_text()
        if "os.environ" in text or "getenv(" in text:
            offenders.append(path.name)
    assert offenders == []


def test_only_keys_formats_queue_keys() -> None:
    offenders = [p.name for p in PACKAGE.glob("*.py")
                 if p.name != "keys.py" and ('":wait"' in p.read_text() or "f\"{prefix}:" in p.read_text())]
    assert offenders == []


def test_only_scripts_runs_lua() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.name == "scripts.py":
            continue
        text = path.read_text()
        assert "evalsha" not in text.lower() and "register_script" not in text and ".eval(" not in text, path.name
