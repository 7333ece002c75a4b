"""Point every Binder, Colab and Kaggle badge in README.md at one repository URL.

The public URL of the course may change (a fork, a move to an organisation); the
README names it once, on its ``REPO_URL:`` line, and this script rewrites the badges
from it (``tests/test_binder.py`` checks that they agree).

Example:
    python tools/set_repo_url.py https://github.com/me/tlcourse
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
URL = re.compile(r"^https://github\.com/([\w.-]+/[\w.-]+?)/?$")
BADGE = re.compile(r"(https://(?:mybinder\.org/v2/gh|colab\.research\.google\.com/github|"
                   r"kaggle\.com/kernels/welcome\?src=https://github\.com))/[\w.-]+/[\w.-]+")


def rewrite(text: str, repo: str) -> str:
    """README text with the REPO_URL line and every badge pointing at ``owner/name``.

    >>> rewrite("REPO_URL: https://github.com/a/b\\nhttps://mybinder.org/v2/gh/a/b/HEAD", "c/d")
    'REPO_URL: https://github.com/c/d\\nhttps://mybinder.org/v2/gh/c/d/HEAD'
    """
    text = re.sub(r"REPO_URL:\s*\S+", f"REPO_URL: https://github.com/{repo}", text)
    return BADGE.sub(lambda m: f"{m[1]}/{repo}", text)


def current(text: str | None = None) -> str:
    """``owner/name`` from the README's ``REPO_URL:`` line (the course website reads it here).

    >>> current("x\\nREPO_URL: https://github.com/a/b\\n")
    'a/b'
    """
    text = README.read_text() if text is None else text
    found = re.search(r"^REPO_URL:\s*(\S+)", text, re.M)
    match = URL.match(found[1]) if found else None
    if not match:
        raise ValueError("README.md has no `REPO_URL: https://github.com/<owner>/<repo>` line")
    return match[1]


def main(argv: list[str]) -> int:
    match = URL.match(argv[0]) if len(argv) == 1 else None
    if not match:
        print("usage: python tools/set_repo_url.py https://github.com/<owner>/<repo>", file=sys.stderr)
        return 2
    README.write_text(rewrite(README.read_text(), match[1]))
    print(f"README.md badges now point at {match[1]}; now run python tools/sync_setup_cells.py (the lessons' badges)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
