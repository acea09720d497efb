"""The documentation builds without warnings (mkdocs --strict, API pages from the docstrings) and says true things."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("path", sorted((ROOT / "sersk").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_source_compiles_without_warnings(path):
    """An invalid escape such as ``\\ :sup:`` in a docstring warns at import on Python 3.12 and later."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(path.read_text(), str(path), "exec")


def test_docs_build_strict(site):
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("sersk.persistence.load_model", "sersk.evaluation.run_reference_protocol",
                 "sersk.datasets.load_corpus", "sersk.exceptions.AudioFileError"):
        assert f'id="{name}"' in api, name
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'id="install"' in home and 'id="quick-start"' in home


def test_cross_references_render_as_links_not_as_roles(site):
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        roles = re.findall(r":(?:class|func|meth|mod|attr|exc|data|obj):(?:`|<code>)", text)
        assert not roles, f"{page.relative_to(site)} shows Sphinx roles as text: {roles[:3]}"
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    assert 'href="#sersk.features.LogMelTransformer"' in api  # e.g. from :class:`~sersk.LogMelTransformer`


def test_the_cli_page_is_generated_from_the_parser():
    spec = importlib.util.spec_from_file_location("cli_docs", ROOT / "tools" / "cli_docs.py")
    cli_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli_docs)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == cli_docs.render(), (
        "docs/cli.md is out of date: run python tools/cli_docs.py"
    )
    from sersk.cli import build_parser

    page = cli_docs.render()
    for action in build_parser()._actions:
        for sub in getattr(action, "choices", None) or {}:
            assert f"## sersk {sub}" in page


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_and_paths_name_files_in_the_repository(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if not re.match(r"[a-z]+://", target):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not in the repository"
    measured = (ROOT / "benchmarks").is_dir()  # the sdist leaves out the benchmarks and their outputs
    for path in re.findall(r"`((?:examples|docs|sersk|benchmarks|tests|tools)/[\w./-]+\.\w+)`", text):
        if path.startswith("benchmarks/") and not measured:
            continue
        assert (ROOT / path).exists(), f"{page.name} names {path}, which is not in the repository"


@pytest.mark.parametrize("script", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_examples_compile_and_show_usage(script):
    source = script.read_text()
    compile(source, str(script), "exec")
    assert source.startswith('"""'), "each example opens with a docstring saying how to run it"
    assert "python examples/" in source, "the docstring shows the command that runs it"
    assert "<!-- TIME:" in source or re.search(r"took [\w .]+ on a 2-core (CPU|AMD EPYC)", source), (
        "the docstring says how long it takes (a TIME marker until measured)"
    )
