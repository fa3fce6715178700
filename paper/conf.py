"""Sphinx configuration of the article (staged by ``advmri.report.book`` into ``paper/_build/src``)."""

project = "advmri: adversarial robustness of MR image reconstruction under realistic perturbations"
author = "The advmri developers"
copyright = "2026, the advmri developers"
extensions = ["myst_nb", "sphinxcontrib.bibtex", "sphinx-mathjax-offline", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_default_options = {"members": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks are shown as the main job executed them
nb_merge_streams = True
numfig = True
numfig_format = {"figure": "Figure %s", "table": "Table %s", "code-block": "Listing %s"}
math_numfig = True
math_eqref_format = "Eq. ({number})"
bibtex_bibfiles = ["references.bib"]
bibtex_reference_style = "author_year"
bibtex_default_style = "plain"
html_theme = "sphinx_book_theme"
html_title = "advmri"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "use_fullscreen_button": False}
html_last_updated_fmt = None
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["mystnb.unknown_mime_type"]  # widget outputs of the notebooks: shown as their text
