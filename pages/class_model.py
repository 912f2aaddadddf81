import dataclasses
import time

import plotly.graph_objects as go
import streamlit as st

import ui.downloads
import ui.jobs
import ui.limits
import ui.links
import ui.model
import ui.pictures
from engine.classviz import CHOICES, PRESETS, animation_gif, visualise_class
from engine.classviz.visualise import MAX_CLASSES
from engine.figures import make_figure
from engine.models import find_class
from engine.stopping import Cancelled, check

JOB_KEY = "cv_job"  # the run in progress or finished: a ui.jobs.Run the page polls
DEFAULT_CLASSES, DEFAULT_PRESET = [543], "maco"  # the paper's Figure 1 opens on a dumbbell; MACO is readable in seconds on a CPU


class Preview:
    """What the page polls while the optimisation runs: the step and, now and then, the images."""

    PREVIEW_SECONDS = 0.4  # the page polls every 0.5 s: fetching an image every step would be waste

    def __init__(self, steps):
        self.steps, self.step, self.images, self.previewed = steps, 0, None, 0.0


def start_run(model, classes, config, seed):
    """The optimisation on a worker (ui.jobs: it waits for a heavy-run slot, and ends with its viewer)."""
    preview = Preview(config.steps)

    def work(run):
        def on_step(progress):
            preview.step = progress.step
            if time.monotonic() - preview.previewed > Preview.PREVIEW_SECONDS:
                preview.images, preview.previewed = progress.images(), time.monotonic()
            return not run.should_stop()  # False: the engine stops; Stop keeps the image so far, a viewer gone drops it

        return visualise_class(model, classes, config=config, seed=seed, on_step=on_step, frame_every=max(1, config.steps // 40))

    run = ui.jobs.start("class_model", f"class model, {len(classes)} classes × {config.steps} steps", work)
    run.progress = preview
    return run


@st.cache_data(max_entries=8, show_spinner="Optimising the paper's and the chosen preset's image…")
def side_by_side(_model, key, class_index, seed, configs, _should_stop=None):
    """On the script thread; ``_should_stop`` True (the viewer gone) raises Cancelled: nothing half-made is cached."""
    return [visualise_class(_model, [class_index], config=c, seed=seed, on_step=lambda _: check(_should_stop)).images_hwc[0]
            for c in configs]


def first_links(names):
    """The URL parameters of the classes, preset, seed and whether the run is shown."""
    class_of = lambda raw: find_class(names, raw)  # noqa: E731
    return (ui.links.UrlParam("classes", "cv_classes", ui.links.list_of(class_of, most=MAX_CLASSES), dump=ui.links.list_text,
                              default=DEFAULT_CLASSES),
            ui.links.UrlParam("typed", "cv_typed", lambda raw: (ui.links.list_of(class_of)(raw), raw)[1], default=""),
            ui.links.UrlParam("preset", "cv_preset", ui.links.one_of(tuple(PRESETS)), default=DEFAULT_PRESET),
            ui.links.UrlParam("seed", "cv_seed", ui.links.number_in(0, 2**32 - 1, int), default=0),
            ui.links.run_param("cv_link_run"))


def preset_links(preset):
    """The URL parameters of the preset's steps and knobs (only those moved off the preset's value go in a link)."""
    base = PRESETS[preset]
    links = [ui.links.UrlParam("steps", f"cv_steps_{preset}", ui.links.number_in(0, 100_000, int), default=base.steps)]
    for name in (f.name for f in dataclasses.fields(base) if f.name != "steps"):
        value, key = getattr(base, name), f"cv_{preset}_{name}"
        if isinstance(value, tuple):
            links += [ui.links.UrlParam(f"{name}_{end}", f"{key}_{end}", ui.links.number_in(0.01, 100.0), dump=ui.links.number_text,
                                        default=float(v))
                      for end, v in zip(("low", "high"), value)]
        else:
            links.append(ui.links.UrlParam(name, key, knob_parser(base, name), dump=ui.links.number_text if type(value) in (int,
                                                                                                                            float) else str,
                                     default=value))
    return links


def knob_parser(base, name):
    """A link's text for one knob, checked as the preset's own values are (``ClassVizConfig``)."""
    kind = type(getattr(base, name))

    def parse(raw):
        if kind is bool:
            value = ui.links.one_of(("true", "false"))(raw.lower()) == "true"
        elif name in CHOICES:
            value = ui.links.one_of(CHOICES[name])(raw)
        else:
            value = ui.links.number_in(-1e9, 1e9, kind)(raw)
        dataclasses.replace(base, **{name: value})  # a ValueError says what is wrong with it
        return value
    return parse


def preset_summary(config) -> str:
    """The preset a run's config is, or the nearest one and what differs from it."""
    def changed(base):
        return [f"{f.name} {getattr(config, f.name)}" for f in dataclasses.fields(base)
                if f.name != "steps" and getattr(config, f.name) != getattr(base, f.name)]

    name = min(PRESETS, key=lambda n: len(changed(PRESETS[n])))
    return name if not changed(PRESETS[name]) else f"{name} with {', '.join(changed(PRESETS[name]))}"


def figure(result):
    """The paper's Figure 1 layout: the class images in rows of four, named, with what made them."""
    panels = [(image, f"{label} ({index})") for index, label, image in zip(result.class_indices, result.labels, result.images_hwc)]
    scores = "; ".join(f"{label} S_c = {s:.1f}, p = {p:.3f}" for label, s, p in
                       zip(result.labels, result.final_scores, result.final_probabilities))
    return make_figure([panels[i:i + 4] for i in range(0, len(panels), 4)], caption=(
        f"Class model visualisation (Simonyan et al. 2013, §2): the image maximising S_c(I), preset "
        f"{preset_summary(result.config)}, {result.steps_run} steps, seed {result.seed}. Model {ui.model.model_caption(model)}. "
        f"Final scores: {scores}."))


def knob(name, value, preset):
    key = f"cv_{preset}_{name}"
    if isinstance(value, bool):
        return st.checkbox(name, value, key=key)
    if name in CHOICES:
        return st.selectbox(name, CHOICES[name], index=CHOICES[name].index(value), key=key)
    if isinstance(value, tuple):
        return tuple(st.number_input(f"{name} ({end})", value=float(v), format="%g", key=f"{key}_{end}")
                     for end, v in zip(("low", "high"), value))
    return st.number_input(name, value=value, format=None if isinstance(value, int) else "%g", key=key)


st.title("Class model visualisation")
st.caption("Simonyan et al. 2013, §2: find the image `I` maximising `S_c(I) − λ‖I‖²` by gradient ascent on the pixels, "
           "from the zero image; the presets add the later regularisers (Yosinski 2015, Mahendran & Vedaldi 2016, Olah 2017, "
           "Fel 2023's MACO).")
link_box = st.container()
model = ui.model.current_model()
names = model.categories
limits = ui.limits.limits()
links = first_links(names)
ui.links.restore_from_url(*links)  # the preset first: it names the other knobs' widgets
ui.links.restore_from_url(*preset_links(st.session_state.get("cv_preset", DEFAULT_PRESET)))
ui.limits.clamp("cv_classes", limits.max_classes, link="classes", what="classes")  # a link's, beyond this server's limits
ui.limits.clamp(f"cv_steps_{st.session_state.get('cv_preset', DEFAULT_PRESET)}", limits.max_steps, link="steps", what="steps")
picked = st.multiselect("Classes", range(len(names)), default=DEFAULT_CLASSES, format_func=lambda i: f"{i} · {names[i]}",
                        key="cv_classes", max_selections=limits.max_classes,
                        help=f"Type to search; several classes optimise together as one batch ({limits.max_classes} at most here).")
typed = st.text_input("…or type classes (index or exact label, comma-separated)", key="cv_typed")
top = st.columns(3)
preset = top[0].selectbox("Preset", tuple(PRESETS), index=tuple(PRESETS).index(DEFAULT_PRESET), key="cv_preset",
                          help="paper: §2's objective and plain gradient ascent. The paper gives no λ, step size or step count: "
                               "ours are tuned for EfficientNet-Lite0. The others are the later regularised methods; maco "
                               "(Fel et al. 2023: only the Fourier phase moves, natural images' spectrum) is readable in seconds on a CPU.")
seed = top[1].number_input("Seed", value=0, step=1, key="cv_seed")
steps = top[2].number_input("Steps", max_value=limits.max_steps, value=min(PRESETS[preset].steps, limits.max_steps), step=10,
                            key=f"cv_steps_{preset}", help=f"At most {limits.max_steps} on this server.")
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
    classes = list(dict.fromkeys(list(picked) + [find_class(names, t) for t in typed.split(",") if t.strip()]))
except ValueError as exc:
    st.error(str(exc))
    ui.links.keep_in_url(*links, *preset_links(preset))
    st.stop()

if len(classes) > limits.max_classes:
    st.warning(f"{len(classes)} classes are chosen; this server runs at most {limits.max_classes} at once, so the first "
               f"{limits.max_classes} run.", icon=":material/speed:")
    classes = classes[:limits.max_classes]

job = st.session_state.get(JOB_KEY)
running = job is not None and not job.done
asked = st.session_state.get("cv_link_run") == ui.links.RUN_REQUESTED  # a link with run=1 runs on arrival, within the limits
if st.button("Run", type="primary", disabled=running or not classes, key="cv_run") or (asked and classes and not running):
    job = st.session_state[JOB_KEY] = start_run(model, classes, config, int(seed))
    running = True
st.session_state["cv_link_run"] = job is not None and job.state != "failed"
ui.links.keep_in_url(*links, *preset_links(preset))
ui.links.copy_link(link_box)


@st.fragment(run_every=0.5 if running else None)
def live_view():
    job = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if job.state == "queued":
        st.button("Leave the line", key="cv_leave", on_click=job.stop)
        st.info(f"Waiting for a free slot: place {job.position} in line ({limits.heavy_runs} long runs at once on this server).",
                icon=":material/hourglass_top:")
    elif not job.done:
        preview = job.progress
        st.button("Stop (keeps the image so far)", key="cv_stop", on_click=job.stop)
        st.progress(preview.step / max(preview.steps, 1), text=f"step {preview.step} of {preview.steps}")
        if preview.images is not None:
            st.image(list(preview.images), width=200)
    elif running:
        st.rerun(scope="app")  # finished: draw the results with the whole page


live_view()
if job is not None and job.error:
    st.error(job.error)
if job is not None and job.state == "cancelled":
    st.info(f"The last run was stopped ({job.cancel_reason or 'before it had a step'}); nothing of it was kept. Press **Run** again.")
if job is None:  # before any run: the shipped gallery's image of these classes and preset, if it has one
    ready = ui.pictures.ready_made_class_images(classes, preset, model=model.name, weights=model.weights)
    if ready:
        shown = st.columns(min(len(ready), 4))
        for i, (jpeg, caption) in enumerate(ready):
            shown[i % len(shown)].image(jpeg, caption=caption)
        st.caption("Ready-made (`assets/gallery`, by `python -m engine gallery`); **Run** makes it here, live, with the knobs above.")
if job is None or job.result is None:
    st.stop()

result = job.result
st.success(f"{'Stopped' if result.stopped_early else 'Finished'} after {result.steps_run} steps.")
gallery = st.columns(min(len(result.labels), 4))
for i, (index, label, image) in enumerate(zip(result.class_indices, result.labels, result.images_hwc)):
    with gallery[i % len(gallery)]:
        st.image(image, caption=f"{label}: S_c = {result.final_scores[i]:.2f}, p = {result.final_probabilities[i]:.3f}")
        ui.downloads.png_download("PNG", image, f"classviz_{index}_{result.seed}.png", key=f"cv_png_{i}")
if result.frames:
    ui.downloads.download("Animated GIF of the run", lambda: animation_gif(result), "classviz.gif", "image/gif", key="cv_gif")
ui.downloads.figure_downloads(lambda: figure(result), f"classviz_{'_'.join(map(str, result.class_indices))}_{result.seed}", key="cv_figure")
curves = go.Figure()
for i, label in enumerate(result.labels):
    curves.add_scatter(y=result.scores[:, i], name=f"S_c {label}")
    curves.add_scatter(y=result.probabilities[:, i], name=f"p {label}", yaxis="y2", line=dict(dash="dot"))
curves.update_layout(xaxis_title="step", yaxis_title="class score S_c", yaxis2=dict(title="probability", overlaying="y", side="right",
                                                                                    range=[0, 1]), height=320)
st.plotly_chart(curves, key="cv_curves")

if preset != "paper" and st.toggle("Paper vs this preset, side by side (first class, same seed)", key="cv_compare"):
    paper = dataclasses.replace(PRESETS["paper"], steps=result.config.steps)  # same class, seed and steps
    try:
        images = side_by_side(model, ui.model.model_key(model), result.class_indices[0], result.seed, (paper, result.config),
                              _should_stop=ui.jobs.viewer_gone("class_model"))
    except Cancelled:  # its viewer has gone: nobody to show it to
        st.stop()
    left, right = st.columns(2)
    left.image(images[0], caption="paper (§2)")
    right.image(images[1], caption=preset)
