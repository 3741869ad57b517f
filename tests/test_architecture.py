"""The shape of s2ilib: the import-layer contract (pyproject.toml, [tool.importlinter]) and
short functions."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 60  # argument parsers (the CLI's register functions) excepted


def test_the_import_layer_contract_holds():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is missing: install the dev extra (pip install -e '.[dev]')")
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in sorted((REPO / "s2ilib").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = node.end_lineno - node.lineno + 1
            parser = path.parent.name == "cli" and node.name == "register"
            if length > MAX_FUNCTION_LINES and not parser:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({length} lines)")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_an_s2i_process_starts_without_the_libraries_only_some_commands_need():
    """torchvision (its package import loads its models and torch._dynamo), scikit-learn and
    the plotting stack are imported where they are used: every `s2i` command, a refused one
    included, would otherwise pay for them at start (benchmarks/startup.py)."""
    heavy = ("torchvision", "sklearn", "matplotlib", "pandas", "seaborn", "torch._dynamo")
    modules = ("s2ilib.cli", "s2ilib.train.registry", "s2ilib.evaluate", "s2ilib.imagine",
               "s2ilib.pipeline", "s2ilib.probes")  # fmt: skip
    code = (f"import sys\nimport {', '.join(modules)}\n"
            f"print(' '.join(m for m in {heavy!r} if m in sys.modules))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == []


def test_s2i_help_loads_no_torch():
    """`s2i --help` (every sub-command's parser built) and any refusal made while parsing
    answer without importing torch: a parser's defaults come from modules of plain data."""
    code = (
        "import sys\nfrom s2ilib.cli import build_parser\nbuild_parser()\n"
        "print(' '.join(m for m in ('torch', 'torchaudio') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "torch" not in result.stdout.split()
