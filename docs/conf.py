"""Sphinx configuration of the course website (``make site``; built by ``tools/build_site.py``).

The pages are the lessons as ``make test`` executed them (``artifacts/executed/``), rendered by
MyST-NB with execution off, in the pip-installed sphinx-book-theme: page table of contents,
launch buttons (Binder, Colab) opening the same notebook in the repository, a source button,
collapsible cells. Nothing is fetched at build time. The repository is named once, in the
README's ``REPO_URL:`` line (``tools/set_repo_url.py``).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
from set_repo_url import current as repo_from_readme  # noqa: E402

REPO_SLUG = repo_from_readme()   # owner/name
BRANCH = "main"

project = "tlcourse: transfer learning, a course that runs"
author = "tlcourse contributors"
copyright = "tlcourse contributors, MIT licence"
html_title = "tlcourse"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# MyST-NB: render the saved outputs, never execute (nbval in `make test` did that, once).
nb_execution_mode = "off"
nb_output_stderr = "show"              # warnings stay visible, as the learner sees them
nb_merge_streams = False             # notebooks/conftest.py already joined each cell's streams
nb_ipywidgets_js = {}                  # no CDN scripts; widgets are drawn as static snapshots
nb_code_prompt_show = "Show solution"  # only the solution cells are collapsed (tools/build_site.py)
nb_code_prompt_hide = "Hide solution"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["tlcourse.css"]
html_last_updated_fmt = ""
html_theme_options = {
    "repository_url": f"https://github.com/{REPO_SLUG}",
    "repository_branch": BRANCH,
    "path_to_docs": "",                # the staged lessons keep the repository's paths: notebooks/NN_x.ipynb
    "use_repository_button": True,
    "use_source_button": True,         # "Show source": the notebook on GitHub
    "use_download_button": True,       # the executed .ipynb, with outputs
    "use_issues_button": True,
    "launch_buttons": {
        "notebook_interface": "jupyterlab",
        "binderhub_url": "https://mybinder.org",
        "colab_url": "https://colab.research.google.com",
    },
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}


def add_kaggle_button(app, pagename, templatename, context, doctree) -> None:
    """Kaggle opens a GitHub notebook like Colab does, but the theme has no option for it:
    add it to the theme's launch menu (after the theme built the menu: priority 502)."""
    if not pagename.startswith("notebooks/"):
        return
    source = f"https://github.com/{REPO_SLUG}/blob/{BRANCH}/{pagename}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            group["buttons"].append({"type": "link", "text": "Kaggle", "tooltip": "Launch on Kaggle",
                                     "icon": "fab fa-kaggle",
                                     "url": f"https://www.kaggle.com/kernels/welcome?src={source}"})


def setup(app) -> None:
    app.connect("html-page-context", add_kaggle_button, priority=502)
