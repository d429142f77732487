"""The documentation: relative links point at files that exist, the strict site build fails on a broken link or
cross-reference, the site's copies of repository files keep their links working, and the README shows what the
ask/tell tutorial prints."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "bench" / "results").glob("*.md"))]


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _hooks()


def test_links_finds_relative_targets_only():
    text = ("[a](guide/x.md) [b](../y.md#part) [c](https://example.org/z.md) [d](#anchor) ![e](img.png)\n"
            "```python\n[f](in_code.md)\n```\n[g](mailto:someone@example.org)")
    assert hooks.links(text) == ["guide/x.md", "../y.md", "img.png"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(page):
    missing = [t for t in hooks.links(page.read_text(encoding="utf-8")) if not (page.parent / t).is_file()]
    assert not missing, f"{page.relative_to(ROOT)} links to files that do not exist: {missing}"


def test_every_guide_page_is_in_the_navigation():
    guide = {f"guide/{p.name}" for p in (ROOT / "docs" / "guide").glob("*.md")}
    config = SimpleNamespace(docs_dir=str(ROOT / "docs"),
                             nav=[{"Home": "index.md"}, {"User guide": [{"Start": "guide/getting-started.md"}]}])
    hooks.on_config(config)
    section = config.nav[1]["User guide"]
    assert section[0] == {"Start": "guide/getting-started.md"}  # the pages named in mkdocs.yml come first
    assert {next(iter(e.values())) if isinstance(e, dict) else e for e in section} == guide
    assert len(section) == len(guide)


@pytest.mark.parametrize(("src_uri", "link", "expected"), [
    ("guide/slurm.md", "../../slurm/README.md", "../repo/slurm/README.md"),
    ("benchmarks.md", "../bench/results/overhead.md#runs", "repo/bench/results/overhead.md#runs"),
    ("guide/x.md", "other.md", "other.md"),
    ("repo/README.md", "docs/guide/x.md", "../guide/x.md"),
    ("repo/bench/results/README.md", "core.md", "core.md"),
    ("repo/bench/results/README.md", "../../docs/index.md", "../../../index.md"),
])
def test_links_to_repository_files_are_rewritten_for_the_site(src_uri, link, expected):
    page = SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))
    markdown = f"see [it]({link}) and `[not]({link})`\n```\n[code]({link})\n```\n"
    out = hooks.on_page_markdown(markdown, page, None, None)
    assert out.startswith(f"see [it]({expected}) and ")
    assert f"[code]({link})" in out  # fenced code is left alone


def test_the_cli_page_shows_every_command():
    text = hooks.cli_help()
    for command in ("summary", "plot", "csv", "watch"):
        assert f"$ python -m evohpo {command} --help" in text


def test_strict_build_fails_on_a_broken_link_and_a_bad_cross_reference(tmp_path):
    # (as in the Makefile: with --quiet, mkdocs 1.6 no longer counts the warnings that --strict turns into errors)
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    for name in ("docs", "evohpo", "bench/results", "bench/tables", "slurm", "tutorials"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    page = tmp_path / "docs" / "guide" / "getting-started.md"
    page.write_text(page.read_text(encoding="utf-8") + "\n[gone](no-such-page.md) [evohpo.no_such_name][]\n")
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")]
    run = subprocess.run(mkdocs, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "no-such-page.md" in run.stderr
    assert "evohpo.no_such_name" in run.stderr


def test_the_readme_shows_what_the_ask_tell_tutorial_prints():
    run = subprocess.run([sys.executable, str(ROOT / "tutorials" / "ask_tell.py")], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("[start:ask_tell_output] -->\n") + len("[start:ask_tell_output] -->\n")
    shown = readme[start:readme.index("<!-- --8<-- [end:ask_tell_output]")]
    assert shown == "".join(f"    {line}\n" for line in run.stdout.splitlines())
