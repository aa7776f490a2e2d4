"""The repository stands on its own: no tracked file points outside it, and every citation of
the clinical references names a section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = "docs/clinical-references.md"
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# A sibling checkout beside the repository, or a path on the machine it was written on: neither
# travels with a clone. A URL's path ("https://host/work/...") is not one of them.
OUTSIDE = re.compile(r"\.\./shared|(?<![\w.~-])/work/")
CITATION = re.compile(re.escape(REFERENCES) + r"#([a-z0-9-]+)")
LOCAL_LINK = re.compile(r"\]\(#([a-z0-9-]+)\)")


def tracked_texts() -> dict[str, str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: no tracked files to read")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    texts = {}
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the working tree, not yet committed
        data = path.read_bytes()
        if b"\0" not in data:
            texts[name] = data.decode("utf-8", errors="replace")
    return texts


def heading_slug(heading: str) -> str:
    """The anchor a Markdown renderer (GitHub's rules) gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def reference_sections() -> set[str]:
    lines = (ROOT / REFERENCES).read_text().splitlines()
    return {heading_slug(line.lstrip("#")) for line in lines if line.startswith("#")}


def test_no_tracked_file_points_outside_the_repository() -> None:
    offending = [
        f"{name}:{number}: {line.strip()}"
        for name, text in tracked_texts().items()
        if name != THIS_FILE
        for number, line in enumerate(text.splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offending == []


def test_every_cited_clinical_reference_section_exists() -> None:
    sections = reference_sections()
    cited = {
        (name, section)
        for name, text in tracked_texts().items()
        if name != THIS_FILE
        for section in CITATION.findall(text)
    }
    # Protocols, metrics and scenarios cite it: a citation regex that finds none is broken.
    assert {name.split("/")[0] for name, _ in cited} >= {"alerts", "telemon", "firmware_sim"}
    assert sorted(c for c in cited if c[1] not in sections) == []


def test_the_references_own_links_land_on_a_section() -> None:
    text = (ROOT / REFERENCES).read_text()
    assert set(LOCAL_LINK.findall(text)) <= reference_sections()


def test_heading_slugs_follow_the_renderer() -> None:
    assert heading_slug(" SpO2 thresholds") == "spo2-thresholds"
    assert heading_slug(" Heart-failure weight") == "heart-failure-weight"
    assert heading_slug(" Metric codes and plausible ranges") == "metric-codes-and-plausible-ranges"
