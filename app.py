"""Router: page config, the pages, and the shared sidebar (model, device).

The page runs before the sidebar is drawn (Streamlit puts the sidebar in its place whenever it is drawn):
``ui`` imports torch, which takes seconds in a fresh server process, and the home page draws the shipped
gallery without it. A page that needs the model imports ``ui`` itself.
"""
import streamlit as st

st.set_page_config(page_title="Deep Inside ConvNets", page_icon=":material/visibility:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/class_model.py", title="Class model visualisation (§2)", icon=":material/palette:"),
    st.Page("pages/saliency.py", title="Class saliency (§3.1)", icon=":material/blur_on:"),
    st.Page("pages/segmentation.py", title="Segmentation from saliency (§3.2)", icon=":material/content_cut:"),
    st.Page("pages/review.py", title="Review segmentations", icon=":material/task_alt:"),
    st.Page("pages/backward_rules.py", title="Backward rules (§4)", icon=":material/compare:"),
    st.Page("pages/faithfulness.py", title="Sanity and faithfulness", icon=":material/fact_check:"),
]

navigation = st.navigation(PAGES)
st.session_state["_routed_by_app"] = True  # ui.state.ROUTED_KEY: this run has app.py's frame
frame = st.sidebar.container()  # the model's place, above what a page puts in the sidebar
try:
    navigation.run()
finally:  # also after st.stop() in a page
    import ui.model

    ui.model.sidebar(frame)
