import streamlit as st

st.title("Deep Inside Convolutional Networks")
st.markdown(
    """
An interactive reproduction of **Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
Visualising Image Classification Models and Saliency Maps"** ([arXiv:1312.6034](https://arxiv.org/abs/1312.6034),
ICLR 2014 workshop), and of the methods that came after it.

The paper's formulas are the defaults everywhere; every departure is an option with a name.
Pick the model in the sidebar: the embedded **EfficientNet-Lite0** (ImageNet, works offline) or a
torchvision network (VGG-16 is the closest to the paper's; its weights must be in the local torch cache).
"""
)
st.page_link("pages/class_model.py", icon=":material/palette:",
             label="Class model visualisation (§2): the image that maximises a class score, S_c(I) − λ‖I‖²")
st.page_link("pages/saliency.py", icon=":material/blur_on:",
             label="Class saliency (§3.1): which pixels the class score depends on, M = max_c |∂S_c/∂I|")
st.page_link("pages/segmentation.py", icon=":material/content_cut:",
             label="Segmentation from saliency (§3.2): saliency seeds a GrabCut; correct the seeds by hand")
st.page_link("pages/backward_rules.py", icon=":material/compare:",
             label="Backward rules (§4): gradient, DeconvNet and guided backprop differ only at the ReLU")
st.page_link("pages/faithfulness.py", icon=":material/fact_check:",
             label="Sanity and faithfulness: SmoothGrad, Integrated Gradients, Grad-CAM, randomisation, deletion/insertion")
st.caption("Demo photos: scikit-image and matplotlib sample data (CC0 / public domain); see assets/README.md.")
