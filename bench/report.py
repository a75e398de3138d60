"""Writing one benchmark's section of docs/benchmarks.md, between its markers."""

from __future__ import annotations

from pathlib import Path

HEADER = "# Benchmarks\n\nRerun any of them with the command given in its section.\n"


def write_section(out: Path, name: str, lines: list[str]) -> None:
    """Replace the section `name` (or append it), leaving every other section as it was."""
    marker_start, marker_end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = "\n".join([marker_start, *lines, marker_end])
    text = out.read_text() if out.exists() else HEADER
    if marker_start in text:
        before, rest = text.split(marker_start, 1)
        after = rest.split(marker_end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(text)
