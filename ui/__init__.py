"""The layer between the pages and the engine: the one non-page place that imports streamlit.

One module per concern, each saying what it owns and what it may import; pages import the modules
they use (``import ui.links``), and the modules import each other only downwards:
state → images, links → model, pictures, canvas_frontend → canvas → results → inputs, workspace, downloads.
``tests/test_architecture.py`` holds that order. Nothing here imports a page.
"""
from streamlit.runtime.pages_manager import PagesManager

# pages/ holds st.Page scripts routed by app.py. Until app.py has once called st.navigation, a
# fresh server treats pages/ as legacy auto-discovered pages and runs a deep-linked page without
# app.py's frame (no sidebar). Switch the legacy mode off for the process as soon as ui loads.
PagesManager.uses_pages_directory = False
