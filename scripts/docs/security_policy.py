"""Copy the root `SECURITY.md`, when there is one, to where the Security page reads it.

`docs/security.md` includes `build/docs/security-policy.md` with pymdownx.snippets
(`check_paths: false`, so nothing is included while the file does not exist). The
copy turns links that only make sense in the repository (relative paths such as
`README.md` or `packages/...`) into code text, because the strict docs build fails on
a link to a file outside `docs/`. Web links and in-page anchors are kept, and
headings move one level down, below the page's own title.

Usage: `python -m scripts.docs.security_policy`.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "SECURITY.md"
TARGET = ROOT / "build" / "docs" / "security-policy.md"
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)")


def localise(markdown: str) -> str:
    """Unlink repository-relative links (text, then path as code); demote headings."""

    def fix(match: re.Match[str]) -> str:
        href = match["href"]
        if re.match(r"[a-z][a-z0-9+.-]*:", href) or href.startswith("#"):
            return match[0]
        text = match["text"]
        return text if text.strip("`") == href else f"{text} (`{href}`)"

    lines, fenced = [], False
    for line in LINK.sub(fix, markdown).splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        lines.append(f"#{line}" if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(lines) + "\n"


def write(source: Path = SOURCE, target: Path = TARGET) -> bool:
    """Write the localised policy to `target`, or remove a stale copy.

    Returns:
        Whether there was a policy to include.
    """
    if not source.exists():
        target.unlink(missing_ok=True)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(localise(source.read_text()))
    return True


def main() -> None:
    """Copy or clear the policy and say which."""
    found = write()
    print(f"security_policy: {'included' if found else 'no SECURITY.md yet'}")


if __name__ == "__main__":
    main()
