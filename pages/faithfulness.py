import plotly.graph_objects as go
import streamlit as st

import ui.downloads
import ui.inputs
import ui.jobs
import ui.limits
import ui.links
import ui.model
from engine.attribution import METHODS
from engine.attribution.methods import ADAPTIVE, BASELINES, MAX_STEPS, TOLERANCE, integrated_gradients_check
from engine.attribution.rules import centre_view
from engine.attribution.sanity import DEFAULT_METHODS, check_randomisation, measure_faithfulness
from engine.figures import make_figure
from engine.models import LoadedModel
from engine.render import colourise
from engine.stopping import Cancelled

STEP_CHOICES = {224: "224 px (the protocol: 224 steps, slow on CPU)", 896: "896 px (56 steps)", 3584: "3584 px (14 steps)"}
IG_STEPS = (ADAPTIVE, 8, 16, 32, 64, 128, 256)  # adaptive: 32, 64, ... until complete within 5%
CHECKS_LINK = (ui.links.UrlParam("methods", "faith_methods", ui.links.list_of(ui.links.one_of(tuple(METHODS))), dump=ui.links.list_text,
                                 default=list(DEFAULT_METHODS)),
               ui.links.UrlParam("stages", "faith_stages", ui.links.number_in(1, 12, int), default=6),
               ui.links.UrlParam("step", "faith_step", ui.links.one_of(tuple(STEP_CHOICES), int), default=896),
               ui.links.run_param("faith_link_run"))
IG_LINK = (ui.links.UrlParam("baseline", "faith_baseline", ui.links.one_of(BASELINES), default=BASELINES[0]),
           ui.links.UrlParam("ig_steps", "faith_ig_steps", ui.links.one_of(IG_STEPS, lambda raw: raw if raw == ADAPTIVE else int(raw)),
                                 default=ADAPTIVE))


# Made on a ui.jobs worker (a heavy run: it waits for a slot, and stops when its viewer leaves); a stopped
# run raises engine.stopping.Cancelled, so nothing half-made is cached.
@st.cache_data(max_entries=8, show_spinner=False)
def randomisation(_model: LoadedModel, key: str, _image, digest: str, target: int, methods: tuple, stages: int, _run=None):
    return check_randomisation(_model, _image, target=target, methods=methods, stages=stages, should_stop=_run.should_stop,
                               on_step=lambda done, total: setattr(_run, "progress", f"Randomised {done - 1} of {total - 1} stages…"))


@st.cache_data(max_entries=8, show_spinner=False)
def faithfulness(_model: LoadedModel, key: str, _image, digest: str, target: int, methods: tuple, step: int, _run=None):
    _run.progress = "Deleting and inserting pixels…"
    return measure_faithfulness(_model, _image, target=target, methods=methods, pixels_per_step=step, should_stop=_run.should_stop)


@st.cache_data(max_entries=8, show_spinner=False)
def centre(_model: LoadedModel, key: str, _image, digest: str):
    return centre_view(_model, _image)


# On the script thread (up to 256 steps: seconds to tens of seconds on a CPU); ``_should_stop`` True (the viewer
# gone) raises Cancelled between its passes, so a tab that closes meanwhile leaves no work behind.
@st.cache_data(max_entries=16, show_spinner="Integrating gradients…")
def completeness(_model: LoadedModel, key: str, _image, digest: str, target: int, baseline: str, steps: int | str, cap: int,
                 _should_stop=None):
    return integrated_gradients_check(_model, _image, target=target, baseline=baseline, steps=steps, max_steps=cap,
                                      should_stop=_should_stop)


st.title("Sanity and faithfulness of saliency maps")
st.caption("Does a map explain the model? **Model randomisation** (Adebayo et al. 2018): re-initialise the layers "
           "from the logits down; a faithful map must change (Spearman ρ with the trained map falls). **Deletion / "
           "insertion** (Petsiuk et al. 2018): blacken pixels, or restore them into a blurred copy (σ = 5), in saliency "
           "order; lower deletion and higher insertion areas are better. All on the centre view.")

link_box = st.container()
model = ui.model.current_model()
image, target = ui.inputs.image_and_class(model, "faith", url=True)
key = ui.model.model_key(model)
ui.links.restore_from_url(*CHECKS_LINK)  # a link's run=1 runs the checks it names, as the button does
controls = st.columns(3)
methods = tuple(controls[0].multiselect("Methods", list(METHODS), default=list(DEFAULT_METHODS), key="faith_methods",
                                        help="SmoothGrad and Integrated Gradients cost 25-32 passes a map: slow on CPU."))
stages = controls[1].slider("Randomisation stages", 1, 12, 6, key="faith_stages",
                            help="Cascading: each stage randomises more layers, from the top down.")
step = controls[2].selectbox("Pixels per step", list(STEP_CHOICES), index=1, format_func=STEP_CHOICES.get, key="faith_step")
request = (key, image.digest, target, methods, stages, step)
asked = st.session_state.get("faith_link_run") == ui.links.RUN_REQUESTED
if st.button("Run the checks", type="primary", disabled=not methods, key="faith_run") or (asked and methods):
    st.session_state["faith_request"] = request
    st.session_state["faith_job"] = ui.jobs.start("faithfulness", f"sanity checks, {len(methods)} methods", lambda run: (
        randomisation(model, key, image.image_hwc, image.digest, target, methods, stages, _run=run),
        faithfulness(model, key, image.image_hwc, image.digest, target, methods, step, _run=run)))
st.session_state["faith_link_run"] = st.session_state.get("faith_request") == request
ui.links.keep_in_url(*CHECKS_LINK)
job = st.session_state.get("faith_job")


@st.fragment(run_every=0.5 if job is not None and not job.done else None)
def progress():
    if job.state == "queued":
        st.button("Leave the line", key="faith_leave", on_click=job.stop)
        st.info(f"Waiting for a free slot: place {job.position} in line ({ui.limits.limits().heavy_runs} long runs at once "
                "on this server).", icon=":material/hourglass_top:")
    elif not job.done:
        st.button("Stop", key="faith_stop", on_click=job.stop)
        st.info(job.progress or "Starting…", icon=":material/hourglass_top:")
    else:
        st.rerun(scope="app")  # finished: draw the results with the whole page


check = results = None
if st.session_state.get("faith_request") != request:
    st.info("Choose methods and press **Run the checks** (tens of seconds on a CPU).")
elif not job.done:
    progress()
elif job.state == "failed":
    st.error(f"The checks failed: {job.error}")
elif job.state == "cancelled":
    st.info(f"The checks were stopped ({job.cancel_reason or 'Stop'}); nothing of them was kept. Press **Run the checks** again.")
else:
    check, results = job.result
    curve = go.Figure([go.Scatter(x=list(check.stages), y=check.correlations[m], mode="lines+markers", name=m) for m in methods])
    curve.update_layout(title="Rank correlation with the trained model's map", xaxis_title="randomised down to layer",
                        yaxis_title="Spearman ρ", yaxis_range=[-0.2, 1.05], height=360)
    st.plotly_chart(curve, key="faith_rho")
    st.caption("A gap in a line: the map became constant (e.g. Grad-CAM's ReLU leaves nothing), so ρ is undefined.")
    for method in methods:
        with st.expander(f"{method}: the map at each stage"):
            st.image([colourise(m) for m in check.maps[method]], width=140,
                     caption=[f"{s} (ρ {r:.2f})" for s, r in zip(check.stages, check.correlations[method])])
            if method == "integrated-gradients":
                st.caption(f"Black baseline, adaptive steps at each stage: 32, 64, ... up to {MAX_STEPS} until Σ IG is within "
                           f"{TOLERANCE:.0%} of S(x) − S(x'); the trained model's steps and gap are under *completeness* below.")
    chart = go.Figure()
    for r in results:
        chart.add_scatter(x=r.fractions, y=r.deletion, name=f"{r.method} deletion (AUC {r.deletion_auc:.3f})", line_dash="dot")
        chart.add_scatter(x=r.fractions, y=r.insertion, name=f"{r.method} insertion (AUC {r.insertion_auc:.3f})")
    chart.update_layout(title="Class probability as pixels are deleted or inserted", xaxis_title="share of pixels",
                        yaxis_title="probability", height=420)
    st.plotly_chart(chart, key="faith_curves")

st.subheader("Integrated Gradients: completeness")
left, right = st.columns(2)
ig_cap = min(MAX_STEPS, ui.limits.limits().max_ig_steps)  # the operator's limit caps adaptive's doubling too
ig_choices = [s for s in IG_STEPS if s == ADAPTIVE or s <= ig_cap]
with ui.links.linked(*IG_LINK):
    ui.limits.clamp("faith_ig_steps", ig_choices[-1], link="ig_steps", what="steps", allowed=ig_choices)
    baseline = left.radio("Baseline x'", BASELINES, horizontal=True, key="faith_baseline",
                          help="black: the zero image in [0, 1]; blurred: the view under a Gaussian blur (σ = 5 px).")
    ig_steps = right.select_slider("Steps", ig_choices, value=ADAPTIVE, key="faith_ig_steps",
                                   help=f"adaptive: 32, 64, ... up to {ig_cap} until |gap| ≤ {TOLERANCE:.0%} of |S(x) − S(x')| "
                                        "(Sundararajan et al.); a number: exactly that many Gauss-Legendre steps. "
                                        f"At most {ig_cap} steps on this server.")
ui.links.copy_link(link_box)
try:
    gap = completeness(model, key, image.image_hwc, image.digest, target, baseline, ig_steps, ig_cap,
                       _should_stop=ui.jobs.viewer_gone("faithfulness"))
except Cancelled:  # its viewer has gone: nobody to show it to
    st.stop()
numbers = st.columns(4)
numbers[0].metric("Σ IG", f"{gap.attribution_sum:.3f}")
numbers[1].metric("S(x) − S(x')", f"{gap.score_difference:.3f}", help=f"S(x) = {gap.score:.3f}, S(x') = {gap.baseline_score:.3f}")
numbers[2].metric("Gap", f"{gap.gap:+.3f} ({gap.relative_gap:.1%})", help="Σ IG − (S(x) − S(x')), and its share of |S(x) − S(x')|: "
                  "zero for exact integration; more steps shrink it.")
numbers[3].metric("Steps used", gap.steps, help="Gauss-Legendre nodes along the path from x' to x.")
if gap.relative_gap > TOLERANCE:
    st.warning(f"Σ IG is {gap.relative_gap:.1%} off S(x) − S(x') with {gap.steps} steps: more than {TOLERANCE:.0%}"
               + (f" even at the cap of {ig_cap}." if ig_steps == ADAPTIVE else "; choose more steps or adaptive."))

if check is not None:
    def figure():
        """Adebayo et al.'s layout: a row per method, the trained model's map, then each randomised stage."""
        photo = centre(model, key, image.image_hwc, image.digest)
        rows = [[(photo, f"{method}: centre view"), *((colourise(m), f"{stage} · ρ {rho:.2f}".replace("nan", "–"))
                                                      for m, stage, rho in zip(check.maps[method], check.stages,
                                                                               check.correlations[method]))]
                for method in methods]
        scores = "; ".join(f"{r.method}: deletion AUC {r.deletion_auc:.3f}, insertion AUC {r.insertion_auc:.3f}" for r in results)
        return make_figure(rows, panel_height=160, caption=(
            f"Model randomisation (Adebayo et al. 2018), cascading from the logits down, {stages} stages; ρ is each map's "
            f"Spearman rank correlation with the trained model's. Deletion / insertion (Petsiuk et al. 2018), {step} pixels "
            f"a step: {scores}. Model {ui.model.model_caption(model)}; class {target} “{model.categories[target]}”; "
            f"photo {image.name}, centre view."))

    ui.downloads.figure_downloads(figure, f"{ui.downloads.stem(image)}_{target}_faithfulness", key="faith_figure")
