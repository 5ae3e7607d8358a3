"""The design's boundaries, checked on the source: who may import whom, and where SQL lives."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ("storage", "meeting_finder", "handlers", "scheduler")
SDKS = {"telegram", "twilio", "fastapi", "starlette", "uvicorn"}
ALLOWED = {
    "storage": set(),
    "meeting_finder": {"storage"},
    "handlers": {"storage", "meeting_finder"},
    "scheduler": {"storage", "meeting_finder", "handlers"},
}
OURS = {"bot", "storage", "meeting_finder", "handlers", "scheduler", "tests"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", CORE)
def test_core_packages_respect_the_map(package: str) -> None:
    files = [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]
    assert files
    for path in files:
        imported = _imports(path)
        assert not imported & SDKS, f"{path.relative_to(ROOT)} imports a channel SDK"
        ours = (imported & OURS) - {package}
        assert ours <= ALLOWED[package], f"{path.relative_to(ROOT)} imports {ours}"


def test_no_print_outside_the_cli() -> None:
    for package in (*CORE, "bot"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name in ("cli.py", "chat.py") or path.name.startswith("cli_"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                     and isinstance(n.func, ast.Name) and n.func.id == "print"]
            assert not calls, f"print() in {path.relative_to(ROOT)}"


def test_no_naive_now_in_core_logic() -> None:
    for package in CORE:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "datetime.utcnow(" not in text, path
            assert "datetime.now()" not in text, path
