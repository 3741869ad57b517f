"""The README and docs/ stay true of the code: every `s2i` command and option they show
exists, every file they name is there, every link into benchmarks/RESULTS.md lands on a
section, and RESULTS.md's index names scripts that are shipped with the options it uses."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from s2ilib.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_LINES = 150
MAX_README_RESULTS = 8


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def section_slugs(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {github_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def sub_commands() -> dict[str, argparse.ArgumentParser]:
    """Every `s2i` sub-command's parser by its full name ('train-ae', 'bench loader')."""

    def children(parser):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from action.choices.items()

    found = {}
    for name, parser in children(build_parser()):
        found[name] = parser
        for child, child_parser in children(parser):
            found[f"{name} {child}"] = child_parser
    return found


def shell_commands(text: str) -> list[str]:
    """The `s2i ...` command lines of a document's bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#")[0]
            match = re.search(r"(?:^|\s)(?:\.venv/bin/)?s2i\s+(.*)", line)
            if match:
                commands.append(match.group(1))
    return commands


def test_the_readme_is_a_short_guide():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"
    table = lines[lines.index("## Results") :]
    rows = [line for line in table if line.startswith("| ") and "](benchmarks/RESULTS.md#" in line]
    assert 0 < len(rows) <= MAX_README_RESULTS, rows


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_s2i_command_and_option_shown_exists(doc):
    parsers = sub_commands()
    text = doc.read_text(encoding="utf-8")
    named = re.findall(r"`(?:\.venv/bin/)?s2i ([a-z][a-z-]*(?: [a-z][a-z-]*)?)", text)
    for words in named:
        assert words in parsers or words.split()[0] in parsers, f"{doc.name}: s2i {words}"
    for command in shell_commands(text):
        words = command.split()
        name = " ".join(words[:2]) if " ".join(words[:2]) in parsers else words[0]
        assert name in parsers, f"{doc.name}: s2i {command}"
        known = {flag for action in parsers[name]._actions for flag in action.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", command):
            assert flag in known, f"{doc.name}: s2i {name} has no {flag}"


@pytest.mark.parametrize("doc", [*DOCS, RESULTS], ids=lambda path: path.name)
def test_links_into_results_land_on_a_section(doc):
    slugs = section_slugs(RESULTS)
    text = doc.read_text(encoding="utf-8")
    anchors = re.findall(r"RESULTS\.md#([\w-]+)\)", text)
    if doc == RESULTS:
        anchors += re.findall(r"\]\(#([\w-]+)\)", text)
    missing = sorted(set(anchors) - slugs)
    assert not missing, f"{doc.name} links to sections RESULTS.md does not have: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_files_named_in_the_docs_exist(doc):
    text = doc.read_text(encoding="utf-8")
    named = re.findall(r"`((?:docs|benchmarks|data|s2ilib|tests|notebooks)/[\w./-]+\.\w+)", text)
    named += [p.removeprefix("../") for p in re.findall(r"\]\(([\w./-]+\.md)", text)]
    base = REPO if doc == README else doc.parent
    missing = [p for p in named if not (REPO / p).exists() and not (base / p).exists()]
    assert not missing, f"{doc.name} names files that are not there: {missing}"


def script_help(name: str) -> str:
    """A benchmark script's --help, as a user would read it."""
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), "--help"],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, f"{name} --help failed: {result.stderr[-2000:]}"
    return result.stdout


def test_the_results_index_names_shipped_scripts_and_their_options():
    text = RESULTS.read_text(encoding="utf-8")
    index = text[text.index("## Index") : text.index("## History")]
    rows = [line for line in index.splitlines() if line.startswith("| [")]
    assert len(rows) >= 20, "the index should cover every question of the file"
    flags_by_script: dict[str, set[str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        question, _answer, script, command, _minutes, commit = cells
        assert re.fullmatch(r"[0-9a-f]{7}(, [0-9a-f]{7})*", commit), (question, commit)
        for path in re.findall(r"`(benchmarks/[\w.]+)`", script):
            assert (REPO / path).is_file(), (question, path)
        for name, flags in re.findall(r"`(\w+\.py) ([^`]*)`", command):
            flags_by_script.setdefault(name, set()).update(re.findall(r"(--[a-z][a-z-]*)", flags))
    asked = {name: flags for name, flags in flags_by_script.items() if flags}  # positional only:
    # golden_compare.py OLD NEW. Two scripts at a time: each --help is mostly torch's import.
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(zip(asked, pool.map(script_help, asked), strict=True))
    for name, flags in sorted(asked.items()):
        known = set(re.findall(r"(--[a-z][a-z-]*)", helps[name]))
        assert flags <= known, f"{name} has no {sorted(flags - known)}"
