"""MkDocs hooks: repository links that work on the site too, and the command line's help on its page.

The pages link to files outside ``docs/`` (``../../slurm/README.md``, ``../bench/results/overhead.md``) as a
reader of the repository follows them. For the site, every such file that a page links to (and, for a markdown
file, every file it links to in turn) is added under ``repo/`` and the links are rewritten to point there; a
link to a file that does not exist is left alone, so that ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_DIR = "repo"  # where files from outside docs/ go on the site
LINK = re.compile(r"(\]\()([^)\s]+)(\))")  # [text](target): inline links and images
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CLI_HELP = "<!-- evohpo-cli-help -->"


def links(markdown: str) -> list[str]:
    """The relative link targets of a markdown text (no URLs, no pure anchors), without their anchors."""
    out = []
    for _, target, _ in LINK.findall(FENCE.sub("", markdown)):
        path = target.split("#", 1)[0]
        if path and not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("/"):
            out.append(path)
    return out


def _outside_fences(markdown: str, fn: Callable[[str], str]) -> str:
    """``markdown`` with ``fn`` applied to the text outside fenced code blocks."""
    out, end = [], 0
    for m in FENCE.finditer(markdown):
        out += [fn(markdown[end:m.start()]), m.group(0)]
        end = m.end()
    return "".join([*out, fn(markdown[end:])])


def _repo_path(src_uri: str) -> str:
    """The repository path of a page of the site."""
    if src_uri.startswith(REPO_DIR + "/"):
        return src_uri[len(REPO_DIR) + 1:]
    return "docs/" + src_uri


def _site_path(repo_path: str) -> str:
    """Where a repository file lives on the site."""
    return repo_path[len("docs/"):] if repo_path.startswith("docs/") else f"{REPO_DIR}/{repo_path}"


def _resolve(page_repo_path: str, target: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(page_repo_path), target))


def on_config(config: Any) -> Any:
    """List every page of docs/guide/ in the navigation: those not named in mkdocs.yml go after the others."""
    guide = Path(config.docs_dir) / "guide"
    for entry in config.nav or []:
        if isinstance(entry, dict) and "User guide" in entry:
            section = entry["User guide"]
            listed = {next(iter(e.values())) if isinstance(e, dict) else e for e in section}
            section.extend(f"guide/{p.name}" for p in sorted(guide.glob("*.md")) if f"guide/{p.name}" not in listed)
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add every file outside docs/ that a page links to, transitively through markdown files."""
    from mkdocs.structure.files import File, InclusionLevel

    root = Path(config.config_file_path).parent
    pending = [(_repo_path(f.src_uri), Path(f.abs_src_path)) for f in files if f.src_uri.endswith(".md")]
    added: set[str] = set()
    while pending:
        repo_path, source = pending.pop()
        for target in links(source.read_text(encoding="utf-8")):
            path = _resolve(repo_path, target)
            if path.startswith(("docs/", "../")) or path in added or not (root / path).is_file():
                continue
            added.add(path)
            files.append(File.generated(config, _site_path(path), abs_src_path=str(root / path),
                                        inclusion=InclusionLevel.NOT_IN_NAV))
            if path.endswith(".md"):
                pending.append((path, root / path))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite links to files outside docs/ to their copies on the site; fill in the command line's help."""
    here = _repo_path(page.file.src_uri)
    site_dir = posixpath.dirname(page.file.src_uri)

    def rewrite(m: re.Match[str]) -> str:
        target = m.group(2)
        path, sep, anchor = target.partition("#")
        if path not in links(f"]({target})"):
            return m.group(0)
        site = _site_path(_resolve(here, path))
        return m.group(1) + posixpath.relpath(site, site_dir or ".") + sep + anchor + m.group(3)

    markdown = _outside_fences(markdown, lambda text: LINK.sub(rewrite, text))
    if CLI_HELP in markdown:
        markdown = markdown.replace(CLI_HELP, cli_help())
    return markdown


def _help(argv: list[str]) -> str:
    from evohpo.results.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main(argv)
    return out.getvalue()


def cli_help() -> str:
    """``evohpo --help`` and each command's ``--help``, as markdown."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        top = _help(["--help"])
        commands = re.findall(r"^ {4}([a-z][\w-]*)(?:\s|$)", top.split("COMMAND", 2)[-1], re.M)
        blocks = ["```text\n$ python -m evohpo --help\n" + top.rstrip() + "\n```"]
        for command in commands:
            text = _help([command, "--help"]).rstrip()
            blocks.append(f"## `{command}`\n\n```text\n$ python -m evohpo {command} --help\n{text}\n```")
        return "\n\n".join(blocks)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
