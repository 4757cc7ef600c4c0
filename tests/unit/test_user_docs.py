"""The user-facing docs describe this product and their links lead somewhere.

"The original" meant the Go project whose manifests we accept, which a reader cannot know; that
project is named, and compared with, in docs/compatibility.md only. The errors envelope's field
names (`original_message`, `original_sink`, `original_data`) are this product's API and stay.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMPATIBILITY = REPO / "docs" / "compatibility.md"
SPEC_REFERENCE = REPO / "docs" / "spec-reference.md"  # generated from the CRD: checked with it
CONNECTOR_DOCS = sorted((REPO / "docs" / "connectors").glob("*.md"))
UNEXPLAINED = re.compile(r"\boriginal(?!_)", re.IGNORECASE)


def user_docs() -> list[Path]:
    docs = [REPO / "README.md", REPO / "processor" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    chart = REPO / "charts" / "dataflow-operator"
    docs += [chart / "templates" / "NOTES.txt", chart / "values.yaml"]
    return [p for p in docs if p not in (COMPATIBILITY, SPEC_REFERENCE)]


def mentions(path: Path, lines: list[str] | None = None) -> list[str]:
    text = path.read_text().splitlines() if lines is None else lines
    return [f"{path.relative_to(REPO)}: {line.strip()}" for line in text if UNEXPLAINED.search(line)]


def is_table_row(line: str) -> bool:
    return line.lstrip().startswith("|")


def test_user_docs_do_not_speak_of_an_original() -> None:
    found: list[str] = []
    for path in user_docs():
        lines = path.read_text().splitlines()
        if path in CONNECTOR_DOCS:  # their field tables are generated from the models: see the test below
            lines = [line for line in lines if not is_table_row(line)]
        found += mentions(path, lines)
    assert not found, "name dataflow-operator/dataflow and link docs/compatibility.md instead:\n" + "\n".join(found)


def test_generated_descriptions_and_samples_do_not_speak_of_an_original() -> None:
    """What `kubectl explain` prints, the tables generated from the same declarations, the samples."""
    found = mentions(REPO / "config" / "crd" / "bases" / "dataflow.dataflow.io_dataflows.yaml")
    found += mentions(SPEC_REFERENCE)
    for sample in sorted((REPO / "config" / "samples").glob("*.yaml")):
        found += mentions(sample)
    for path in CONNECTOR_DOCS:
        found += mentions(path, [line for line in path.read_text().splitlines() if is_table_row(line)])
    assert not found, "\n".join(found)


def test_compatibility_page_names_the_project_it_compares_with() -> None:
    text = COMPATIBILITY.read_text()
    assert "https://github.com/dataflow-operator/dataflow" in text
    for shape in ("{type: kafka, kafka: {", "{type: kafka, config: {"):
        assert shape in text


# ----------------------------------------------------------------------------- links

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*```")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and (m := re.match(r"^#{1,6}\s+(.*)$", line)):
            slug = github_anchor(m.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    links: list[str] = []
    in_code = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            links += [t for t in LINK.findall(line) if not re.match(r"^[a-z]+:", t)]
    return links


def test_relative_links_in_the_docs_resolve() -> None:
    broken: list[str] = []
    for path in [p for p in user_docs() if p.suffix == ".md"] + [COMPATIBILITY]:
        for target in relative_links(path):
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
