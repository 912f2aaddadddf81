import streamlit as st

import ui.downloads
import ui.inputs
import ui.links
import ui.model
import ui.results
from engine.attribution.rules import RULE_LATEX, RULES, attribution_to_rgb, centre_view, feature_layers, reconstruct_from_image
from engine.figures import make_figure
from engine.models import LoadedModel
from engine.render import colourise, display_shape, fit

TITLES = {"gradient": "Gradient (this paper)", "deconvnet": "DeconvNet (Zeiler & Fergus)",
          "guided": "Guided backprop (Springenberg et al.)"}


@st.cache_data(max_entries=8, show_spinner=False)
def layers(_model: LoadedModel, key: str):
    return feature_layers(_model)


@st.cache_data(max_entries=48, show_spinner="Projecting the unit back to the pixels…")
def reconstruction(_model: LoadedModel, key: str, _image, digest: str, layer: str, channel: int | None, rule: str):
    return reconstruct_from_image(_model, _image, layer=layer, channel=channel, rule=rule)


@st.cache_data(max_entries=8, show_spinner=False)
def view(_model: LoadedModel, key: str, _image, digest: str):
    return centre_view(_model, _image)


st.title("Backward rules: gradient, DeconvNet, guided backprop")
st.caption("Simonyan et al. 2013, §4: the three visualisations share every backward step (transposed convolutions, "
           "max-pool switches) except the rule through a rectifier. `X` is the rectifier's forward input, `R` the "
           "signal coming back. For ReLU6 (EfficientNet-Lite0) the forward mask is `1(0 < X < 6)`; DeconvNet "
           "ignores `X`, so it also ignores the clamp at 6.")

link_box = st.container()
model = ui.model.current_model()
image, target = ui.inputs.image_and_class(model, "rules", url=True)
key = ui.model.model_key(model)

columns = st.columns(len(RULES))
maps = {}
for column, rule in zip(columns, RULES):
    result = ui.results.cached_saliency(model, image, target=target, method=rule)
    maps[rule] = colourise(fit(result.saliency_hw, display_shape(image.image_hwc.shape)))
    column.markdown(f"**{TITLES[rule]}**")
    column.latex(RULE_LATEX[rule])
    column.image(maps[rule], caption=f"max-abs map for “{result.label}”", width="stretch")

st.subheader("Reconstruction from an inner layer")
st.caption("Zeiler & Fergus style: find the strongest activation of one channel on the centre view and send only "
           "that unit back to the pixels with each rule. Grey is zero; colours are the signed reconstruction.")
available = layers(model, key)
names = [item.name for item in available]
middle = [item.name for item in available if item.kind in ("ReLU", "ReLU6")] or names
controls = st.columns(2)
with ui.links.linked(ui.links.UrlParam("layer", "rules_layer", ui.links.one_of(names), default=middle[len(middle) // 2])):
    layer_name = controls[0].selectbox(
        "Layer", names, index=names.index(middle[len(middle) // 2]), key="rules_layer",
        format_func=lambda n: f"{n} · {available[names.index(n)].kind} · {available[names.index(n)].channels} channels",
        help="Convolution and rectifier outputs in the order they run; deeper layers see larger patches.")
layer = available[names.index(layer_name)]
with ui.links.linked(ui.links.UrlParam("channel", "rules_channel", ui.links.number_in(0, layer.channels - 1, int))):
    channel = controls[1].selectbox("Channel", [None, *range(layer.channels)], key="rules_channel",
                                    format_func=lambda c: "strongest on this image" if c is None else str(c))
ui.links.copy_link(link_box)

shown = st.columns(len(RULES) + 1)
found, reconstructions = None, {}
for column, rule in zip(shown[1:], RULES):
    found = reconstruction(model, key, image.image_hwc, image.digest, layer.name, channel, rule)
    reconstructions[rule] = attribution_to_rgb(found.attribution_chw)
    column.image(reconstructions[rule], caption=TITLES[rule], width="stretch")
centre = view(model, key, image.image_hwc, image.digest)
shown[0].image(centre, width="stretch", caption=f"Centre view · channel {found.channel} peaks at {found.position_hw} of "
                                                f"{layer.size_hw[0]}×{layer.size_hw[1]} (value {found.activation:.2f})")

ui.downloads.figure_downloads(lambda: make_figure(
    [[(fit(image.image_hwc, display_shape(image.image_hwc.shape)), image.name), *((maps[r], TITLES[r]) for r in RULES)],
     [(centre, f"centre view, {layer.name} channel {found.channel}"), *((reconstructions[r], r) for r in RULES)]],
    caption=f"Simonyan et al. 2013, §4: gradient, DeconvNet and guided backprop differ only in the backward rule through a "
            f"ReLU. Top: max-abs maps of class {target} “{model.categories[target]}”. Bottom: the strongest unit of "
            f"{layer.name} ({layer.kind}) channel {found.channel} sent back to the pixels by each rule (grey is zero). "
            f"Model {ui.model.model_caption(model)}; photo {image.name}."), f"{ui.downloads.stem(image)}_{target}_rules",
                              key="rules_figure")
