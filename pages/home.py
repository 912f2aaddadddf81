import streamlit as st

st.title("Deep Inside Convolutional Networks")
st.markdown(
    """
An interactive reproduction of **Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
Visualising Image Classification Models and Saliency Maps"** ([arXiv:1312.6034](https://arxiv.org/abs/1312.6034),
ICLR 2014 workshop), and of the methods that came after it.

The paper's formulas are the defaults everywhere; every departure is an option with a name.
Pick the model in the sidebar: the embedded **EfficientNet-Lite0** (ImageNet, works offline) or a
torchvision network (VGG-16 is the closest to the paper's).
"""
)
st.page_link("pages/saliency.py", label="Class saliency (§3.1): which pixels the class score depends on, "
             "`M = max_c |∂S_c/∂I|`, from one backward pass", icon=":material/blur_on:")
st.caption("Demo photos: scikit-image and matplotlib sample data (CC0 / public domain); see assets/README.md.")
