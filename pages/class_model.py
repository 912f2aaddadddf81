import dataclasses
import threading
import time

import plotly.graph_objects as go
import streamlit as st

import ui
from engine.classviz import CHOICES, PRESETS, animation_gif, visualise_class
from engine.models import find_class

JOB_KEY = "cv_job"  # the run in progress or finished: a worker thread the page polls


class Job:
    """One optimisation on a worker thread; the page polls it and its Stop button sets ``stop``."""

    PREVIEW_SECONDS = 0.4  # the page polls every 0.5 s: fetching an image every step would be waste

    def __init__(self, model, classes, config, seed):
        self.steps, self.step, self.images, self.previewed = config.steps, 0, None, 0.0
        self.stop, self.result, self.error = threading.Event(), None, None
        args = dict(config=config, seed=seed, on_step=self._on_step, frame_every=max(1, config.steps // 40))
        threading.Thread(target=self._work, args=(model, classes, args), daemon=True).start()

    def _on_step(self, progress):
        self.step = progress.step
        if time.monotonic() - self.previewed > self.PREVIEW_SECONDS:
            self.images, self.previewed = progress.images(), time.monotonic()
        return not self.stop.is_set()  # False: the engine stops and keeps what it has

    def _work(self, model, classes, args):
        try:
            self.result = visualise_class(model, classes, **args)
        except ValueError as exc:
            self.error = str(exc)


@st.cache_data(max_entries=8, show_spinner="Optimising the paper's and the chosen preset's image…")
def side_by_side(_model, key, class_index, seed, configs):
    return [visualise_class(_model, [class_index], config=c, seed=seed).images_hwc[0] for c in configs]


def knob(name, value, preset):
    key = f"cv_{preset}_{name}"
    if isinstance(value, bool):
        return st.checkbox(name, value, key=key)
    if name in CHOICES:
        return st.selectbox(name, CHOICES[name], index=CHOICES[name].index(value), key=key)
    if isinstance(value, tuple):
        return tuple(st.number_input(f"{name} ({end})", value=float(v), format="%g", key=f"{key}_{end}") for end, v in zip(("low", "high"), value))
    return st.number_input(name, value=value, format=None if isinstance(value, int) else "%g", key=key)


st.title("Class model visualisation")
st.caption("Simonyan et al. 2013, §2: find the image `I` maximising `S_c(I) − λ‖I‖²` by gradient ascent on the pixels, "
           "from the zero image; the presets add the later regularisers (Yosinski 2015, Mahendran & Vedaldi 2016, Olah 2017).")
model = ui.current_model()
names = model.categories
picked = st.multiselect("Classes", range(len(names)), default=[1], format_func=lambda i: f"{i} · {names[i]}", key="cv_classes",
                        max_selections=16, help="Type to search; several classes optimise together as one batch.")
typed = st.text_input("…or type classes (index or exact label, comma-separated)", key="cv_typed")
top = st.columns(3)
preset = top[0].selectbox("Preset", tuple(PRESETS), key="cv_preset", help="paper: §2's objective and plain gradient ascent. The paper gives no λ, step size or step count: "
                        "ours are tuned for EfficientNet-Lite0. The others are the later regularised methods.")
seed = top[1].number_input("Seed", value=0, step=1, key="cv_seed")
steps = top[2].number_input("Steps", value=PRESETS[preset].steps, step=10, key=f"cv_steps_{preset}")
with st.expander("Every knob of the preset"):
    st.caption("Pixel-valued knobs (l2, init_std, bounds) are in the model's normalised input space.")
    columns = st.columns(3)
    fields = [f.name for f in dataclasses.fields(PRESETS[preset]) if f.name != "steps"]
    knobs = {}
    for i, name in enumerate(fields):
        with columns[i % 3]:
            knobs[name] = knob(name, getattr(PRESETS[preset], name), preset)
try:
    config = dataclasses.replace(PRESETS[preset], steps=int(steps), **knobs)
    classes = list(picked) + [find_class(names, t) for t in typed.split(",") if t.strip()]
except ValueError as exc:
    st.error(str(exc))
    st.stop()

job = st.session_state.get(JOB_KEY)
running = job is not None and job.result is None and job.error is None
if st.button("Run", type="primary", disabled=running or not classes, key="cv_run"):
    job = st.session_state[JOB_KEY] = Job(model, classes, config, int(seed))
    running = True


@st.fragment(run_every=0.5 if running else None)
def live_view():
    job = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if job.result is None and job.error is None:
        st.button("Stop (keeps the image so far)", key="cv_stop", on_click=job.stop.set)
        st.progress(job.step / max(job.steps, 1), text=f"step {job.step} of {job.steps}")
        if job.images is not None:
            st.image(list(job.images), width=200)
    elif running:
        st.rerun(scope="app")  # finished: draw the results with the whole page


live_view()
if job is not None and job.error:
    st.error(job.error)
if job is None or job.result is None:
    st.stop()

result = job.result
st.success(f"{'Stopped' if result.stopped_early else 'Finished'} after {result.steps_run} steps.")
gallery = st.columns(min(len(result.labels), 4))
for i, (index, label, image) in enumerate(zip(result.class_indices, result.labels, result.images_hwc)):
    with gallery[i % len(gallery)]:
        st.image(image, caption=f"{label}: S_c = {result.final_scores[i]:.2f}, p = {result.final_probabilities[i]:.3f}")
        ui.png_download("PNG", image, f"classviz_{index}_{result.seed}.png", key=f"cv_png_{i}")
if result.frames:
    ui.download("Animated GIF of the run", lambda: animation_gif(result), "classviz.gif", "image/gif", key="cv_gif")
curves = go.Figure()
for i, label in enumerate(result.labels):
    curves.add_scatter(y=result.scores[:, i], name=f"S_c {label}")
    curves.add_scatter(y=result.probabilities[:, i], name=f"p {label}", yaxis="y2", line=dict(dash="dot"))
curves.update_layout(xaxis_title="step", yaxis_title="class score S_c", yaxis2=dict(title="probability", overlaying="y", side="right", range=[0, 1]), height=320)
st.plotly_chart(curves, key="cv_curves")

if preset != "paper" and st.toggle("Paper vs this preset, side by side (first class, same seed)", key="cv_compare"):
    paper = dataclasses.replace(PRESETS["paper"], steps=result.config.steps)  # same class, seed and steps
    images = side_by_side(model, ui.model_key(model), result.class_indices[0], result.seed, (paper, result.config))
    left, right = st.columns(2)
    left.image(images[0], caption="paper (§2)")
    right.image(images[1], caption=preset)
