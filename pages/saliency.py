import plotly.graph_objects as go
import streamlit as st

import ui.downloads
import ui.inputs
import ui.limits
import ui.links
import ui.model
import ui.results
from engine.attribution import REDUCTIONS
from engine.figures import make_figure
from engine.images import encode_png
from engine.render import blend, colourise, display_shape, fit

LINK = (ui.links.UrlParam("views", "sal_views", ui.links.one_of((1, 10), int), default=1),
        ui.links.UrlParam("reduce", "sal_reduce", ui.links.one_of(REDUCTIONS), default=REDUCTIONS[0]),
        ui.links.UrlParam("opacity", "sal_opacity", ui.links.number_in(0.0, 1.0), dump=ui.links.number_text, default=0.6))

st.title("Image-specific class saliency")
st.caption("Simonyan et al. 2013, §3.1: linearise the class score around the image, `S_c(I) ≈ wᵀI + b` "
           "with `w = ∂S_c/∂I` (one backward pass), and map `M[i,j] = max_c |w[i,j,c]|`.")

link_box = st.container()
model = ui.model.current_model()
image = ui.inputs.image_picker(url_param="image")

ui.links.restore_from_url(*LINK)
allowed_views = (1, 10) if ui.limits.limits().max_views >= 10 else (1,)  # the operator's limit
ui.limits.clamp("sal_views", allowed_views[-1], link="views", what="views", allowed=allowed_views)
controls = st.columns(4)
views = controls[0].radio("Views", allowed_views, horizontal=True, key="sal_views",
                          format_func=lambda v: "centre crop" if v == 1 else "10 views",
                          help="The centre 224×224 crop of the 256-short-side image, or the paper's 10 sub-images "
                               "(4 corners + centre, each mirrored) averaged and mapped back onto the photo. "
                               "The 10-view averaging follows the paper's test protocol (wording unconfirmed).")
reduce = controls[1].selectbox("Channel reduction", REDUCTIONS, key="sal_reduce",
                               help="max-abs is the paper's. sum-abs, l2 and signed-max are what other tools do.")
predictions = ui.results.cached_predict(model, image, top=5, views=views)
with controls[2]:
    target = ui.inputs.class_picker(model, top1=predictions[0].index, key="sal_class", url_param="class")
opacity = controls[3].slider("Overlay opacity", 0.0, 1.0, 0.6, 0.05, key="sal_opacity")
ui.links.keep_in_url(*LINK)
ui.links.copy_link(link_box)

result = ui.results.cached_saliency(model, image, target=target, views=views, reduce=reduce)
shown_hw = display_shape(image.image_hwc.shape)  # a 12 MP photo is drawn at 1280 px; the downloads keep its size
photo = fit(image.image_hwc, shown_hw)
heat = colourise(fit(result.saliency_hw, shown_hw))
overlay = blend(photo, heat, opacity)

left, middle, right = st.columns(3)
left.image(photo, caption=f"{image.name} ({image.image_hwc.shape[1]}×{image.image_hwc.shape[0]})", width="stretch")
middle.image(heat, caption=f"Saliency for “{result.label}” (S_c = {result.score:.2f})", width="stretch")
right.image(overlay, caption="Overlay", width="stretch")

chart = go.Figure(go.Bar(
    x=[p.probability for p in predictions][::-1], y=[f"{p.label} ({p.index})" for p in predictions][::-1],
    orientation="h", customdata=[p.logit for p in predictions][::-1],
    hovertemplate="%{y}<br>probability %{x:.3f}<br>logit %{customdata:.2f}<extra></extra>"))
chart.update_layout(title="Top-5 predictions", xaxis_title="probability", height=280, margin=dict(l=10, r=10, t=40, b=10))
st.plotly_chart(chart, key="sal_predictions")

name = f"{ui.downloads.stem(image)}_{result.class_index}_{reduce}_{views}views"
downloads = st.columns(3)
with downloads[0]:
    ui.downloads.download("Overlay (PNG)", lambda: encode_png(blend(image.image_hwc, colourise(result.saliency_hw), opacity)),
                f"{name}_overlay.png", "image/png", key="dl_overlay")
with downloads[1]:
    ui.downloads.download("Heat map (PNG)", lambda: encode_png(colourise(result.saliency_hw)), f"{name}_heat.png", "image/png",
                          key="dl_heat")
with downloads[2]:
    ui.downloads.npy_download("Raw map (.npy, float32 H×W)", result.saliency_hw, f"{name}.npy", key="dl_npy")
ui.downloads.figure_downloads(lambda: make_figure(
    [[(photo, image.name), (heat, f"saliency for {result.label}"), (overlay, f"overlay, opacity {opacity:g}")]],
    caption=f"Image-specific class saliency (Simonyan et al. 2013, §3.1), M = max_c |∂S_c/∂I| reduced by {reduce}, "
            f"on {'the centre crop' if views == 1 else 'the 10 views'}. Model {ui.model.model_caption(model)}; class "
            f"{result.class_index} “{result.label}”, S_c = {result.score:.2f}; photo {image.name}."), name, key="sal_figure")
