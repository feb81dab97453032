"""The docs stay true: their generated sections are current, every command has help and a
place in docs/cli.md, and the README leads to every page."""

from __future__ import annotations

import re
from pathlib import Path

import click
from arms_ledger.cli.main import cli
from cogapp import Cog

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The files cog regenerates: `.venv/bin/cog -r README.md docs/*.md`.
GENERATED = ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))]


def commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            yield from commands(sub, (*path, name))


def test_every_command_has_help_and_is_in_the_cli_reference():
    reference = (DOCS / "cli.md").read_text()
    for path, command in commands(cli):
        assert command.help, f"{' '.join(path)} has no help"
        assert f"## `{' '.join(('arms-ledger', *path))}`" in reference


def test_generated_sections_are_current(monkeypatch):
    monkeypatch.chdir(ROOT)
    status = Cog().main(["cog", "--check", *GENERATED])
    assert status == 0, (
        "generated docs are stale: run `.venv/bin/cog -r README.md docs/*.md`"
    )


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)[)#]", readme))
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in linked, f"README.md does not link docs/{page.name}"


# Pages linked before they are written (a parallel change): none at the moment.
PENDING: set[str] = set()


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_docs_pages_resolve():
    pages = [ROOT / "README.md", *DOCS.glob("*.md")]
    for page in pages:
        text = page.read_text()
        for target, anchor in re.findall(r"\]\(([^)#:]*\.md|)(?:#([^)]*))?\)", text):
            path = (page.parent / target).resolve() if target else page
            if path.relative_to(ROOT).as_posix() in PENDING:
                continue
            assert path.is_file(), f"{page.name} links a missing page: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)
                assert anchor in {slug(h) for h in headings}, (
                    f"{page.name} links a missing section: {target}#{anchor}"
                )
