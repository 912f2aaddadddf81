"""Links that reopen a view: each page's inputs in its URL (ui.links.UrlParam), driven by AppTest.

A good link sets the widgets and shows their result; a bad or stale value (an unknown class, a method
that does not exist, a number out of range) leaves its widget at the default with a note, never a
traceback; the page writes its state back, defaults left out."""
from __future__ import annotations

import html
import time

import pytest
from streamlit.testing.v1 import AppTest

import ui.inputs
import ui.links
from engine.runs.gallery import read_gallery
from tests.conftest import ASSETS, ROOT, finish_job

APP = str(ROOT / "app.py")


def open_link(page: str, **params: str) -> AppTest:
    """A fresh session opening ``page`` (e.g. "pages/saliency.py") with ``params`` in its URL."""
    at = AppTest.from_file(APP, default_timeout=300)
    if page:
        at.switch_page(page)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def notes(at: AppTest) -> str:
    return " ".join(w.value for w in [*at.warning, *at.sidebar.warning])


def captions(at: AppTest) -> list[str]:
    return [e.proto.imgs[0].caption for e in at.get("image")]


# ---------------------------------------------------------------- the parsers, without a page
def test_parsers_accept_good_text_and_say_why_they_refuse_bad_text():
    assert ui.links.one_of((1, 10), int)("10") == 10 and ui.links.one_of(("max-abs", "l2"))("l2") == "l2"
    with pytest.raises(ValueError, match="one of 1, 10"):
        ui.links.one_of((1, 10), int)("7")
    assert ui.links.number_in(0.0, 1.0)("0.25") == 0.25
    for bad, why in (("2", "between 0.0 and 1.0"), ("nan", "between"), ("inf", "between"), ("abc", "not a number")):
        with pytest.raises(ValueError, match=why):
            ui.links.number_in(0.0, 1.0)(bad)
    with pytest.raises(ValueError, match="whole number"):
        ui.links.number_in(0, 9, int)("1.5")
    assert ui.links.list_of(ui.links.one_of(("a", "b", "c")))("c,a,,c") == ["c", "a"]  # repeats and blanks dropped
    with pytest.raises(ValueError, match="at most 2"):
        ui.links.list_of(str, most=2)("x,y,z")
    assert [ui.links.number_text(v) for v in (3, 0.6, 1e-05, 2.0)] == ["3", "0.6", "1e-05", "2"]
    assert ui.inputs._demo_name("grace_hopper") == "grace hopper"
    with pytest.raises(ValueError, match="no demo photo 'dog'"):
        ui.inputs._demo_name("dog")


# ---------------------------------------------------------------- home
def gallery_html(at: AppTest) -> str:
    """Home's gallery: one HTML block a row, its pictures inside."""
    return "".join(e.proto.body for e in at.get("html"))


def test_home_shows_every_shipped_tile_at_once_with_a_link_to_its_page():
    at = open_link("")
    gallery = read_gallery(ASSETS / "gallery")
    shown = gallery_html(at)
    assert shown.count("<img ") == len(gallery.tiles) + len(gallery.section("3.1"))  # §3.1: each photo over its map
    assert shown.count("data:image/jpeg;base64,") == shown.count("<img ")  # in the page: no request per picture
    assert all(html.escape(tile["caption"]) in shown for tile in gallery.tiles)
    assert shown.count("Open in its page") == len(gallery.tiles)
    espresso = next(t for t in gallery.section("3.1") if t["photo"] == "espresso")
    assert f'href="/saliency?image=espresso&amp;class={espresso["class_index"]}&amp;views=10"' in shown
    assert "cv_job" not in at.session_state and not at.warning
    readable, paper = (html.escape(tile["caption"]) for tile in gallery.section("2")[:2])
    assert "maco preset" in readable and "paper preset" in paper and shown.index(readable) < shown.index(paper)  # §2 leads with maco


@pytest.mark.slow
def test_a_home_section_is_redone_live_on_the_sidebars_model():
    at = open_link("", weights="random")
    section = read_gallery(ASSETS / "gallery").section("4")
    at.button(key="home_redo_4").click().run()
    assert not at.exception and not at.error
    assert set(at.session_state["home_redone"]) == {t["id"] for t in section}
    shown = gallery_html(at)
    assert shown.count("efficientnet_lite0 (random) · ") == 2 * len(section)  # caption and alt text of each
    assert all(html.escape(t["caption"]) not in shown for t in section)  # the shipped tiles of §4 are replaced in place
    assert "weights=random" in shown and at.query_params == {"weights": "random"}


# ---------------------------------------------------------------- saliency
@pytest.mark.slow
def test_a_saliency_link_restores_its_widgets_and_result_and_the_page_keeps_the_url():
    at = open_link("pages/saliency.py", image="espresso", **{"class": "967"}, views="10", reduce="l2", opacity="0.3")
    assert not notes(at)
    assert at.selectbox(key="image_demo").value == "espresso" and at.selectbox(key="sal_class").value == 967
    assert (at.radio(key="sal_views").value, at.selectbox(key="sal_reduce").value, at.slider(key="sal_opacity").value) == (10, "l2", 0.3)
    assert captions(at)[0] == "espresso (600×400)" and "Saliency for “espresso”" in captions(at)[1]
    assert at.query_params == {"image": "espresso", "class": "967", "views": "10", "reduce": "l2", "opacity": "0.3"}
    at.radio(key="sal_views").set_value(1).run()  # the person's click wins over the link's value, and the URL follows
    assert at.radio(key="sal_views").value == 1 and "views" not in at.query_params
    assert "Link to this view" in str(at.get("popover")[0].proto)


@pytest.mark.slow
def test_a_bad_saliency_link_falls_back_to_the_defaults_with_a_note_for_each_value():
    at = open_link("pages/saliency.py", image="dog", **{"class": "tabby cat!"}, views="7", reduce="sum", opacity="nan")
    said = notes(at)
    for name in ("image=dog", "class=tabby cat!", "views=7", "reduce=sum", "opacity=nan"):
        assert f"`{name}` cannot be used" in said, said
    assert at.selectbox(key="image_demo").value == "cat" and at.selectbox(key="sal_class").value is None
    shown = (at.radio(key="sal_views").value, at.selectbox(key="sal_reduce").value, at.slider(key="sal_opacity").value)
    assert shown == (1, "max-abs", 0.6)
    assert not at.error and len(at.get("image")) == 3  # the default view, shown
    assert at.query_params == {}  # the bad values are gone from the URL
    at.radio(key="sal_views").set_value(10).run()
    assert "views=7" not in notes(at)  # a note goes once its widget is changed


@pytest.mark.slow
def test_the_model_in_a_link_is_the_sidebars_and_a_bad_one_is_noted_there():
    at = open_link("pages/saliency.py", weights="random")
    assert at.sidebar.radio[0].value == "random" and "(random)" in at.sidebar.caption[0].value
    assert at.query_params == {"weights": "random"}
    bad = open_link("pages/saliency.py", model="resnet9000")
    assert "`model=resnet9000` cannot be used" in " ".join(w.value for w in bad.sidebar.warning)
    assert bad.sidebar.selectbox[0].value == "efficientnet_lite0"


@pytest.mark.slow
def test_a_gallery_tile_link_opens_its_page_on_that_input():
    gallery = read_gallery(ASSETS / "gallery")
    tile = next(t for t in gallery.section("3.1") if t["photo"] == "espresso")
    at = open_link(f"pages/{tile['link']['page']}.py", **tile["link"]["params"])
    assert not notes(at)
    assert f"Saliency for “{tile['label']}”" in captions(at)[1] and at.radio(key="sal_views").value == tile["views"]


# ---------------------------------------------------------------- backward rules
@pytest.mark.slow
def test_a_backward_rules_link_restores_class_layer_and_channel_and_a_stale_layer_is_noted():
    at = open_link("pages/backward_rules.py", image="astronaut", **{"class": "1"}, channel="3")
    assert not notes(at)
    assert at.selectbox(key="rules_image_demo").value == "astronaut" and at.selectbox(key="rules_class").value == 1
    assert any(c.startswith("Centre view · channel 3 ") for c in captions(at))
    stale = open_link("pages/backward_rules.py", layer="features.99.relu", channel="100000")
    assert "`layer=features.99.relu` cannot be used" in notes(stale) and "`channel=100000` cannot be used" in notes(stale)
    assert stale.selectbox(key="rules_channel").value is None


# ---------------------------------------------------------------- class model
def wait_for_result(at: AppTest, timeout: float = 300) -> AppTest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = at.session_state["cv_job"]
        if job.done:
            return at.run()
        time.sleep(0.3)
        at.run()
    raise AssertionError("no result")


@pytest.mark.slow
def test_a_class_model_link_with_run_runs_on_arrival_and_keeps_its_knobs():
    at = open_link("pages/class_model.py", classes="99", preset="olah", steps="2", seed="3", jitter="4", run="1")
    assert not notes(at)
    assert at.multiselect(key="cv_classes").value == [99] and at.selectbox(key="cv_preset").value == "olah"
    assert at.number_input(key="cv_steps_olah").value == 2 and at.number_input(key="cv_olah_jitter").value == 4
    wait_for_result(at)
    job = at.session_state["cv_job"]
    assert job.result.config.jitter == 4 and job.result.seed == 3 and job.result.class_indices == (99,)
    assert any(c.startswith("goose: S_c =") for c in captions(at))
    assert at.query_params == {"classes": "99", "preset": "olah", "steps": "2", "seed": "3", "jitter": "4", "run": "1"}
    assert [b.label for b in at.get("download_button")][-3:] == ["Figure (PNG)", "Figure (SVG)", "Figure (PDF)"]


@pytest.mark.slow
def test_a_bad_class_model_link_runs_nothing_and_notes_each_value():
    at = open_link("pages/class_model.py", classes="99,kangaroo rat", preset="dreamy", jitter="999", seed="-4")
    said = notes(at)
    for name in ("classes=99,kangaroo rat", "preset=dreamy", "seed=-4"):
        assert f"`{name}` cannot be used" in said, said
    assert at.multiselect(key="cv_classes").value == [543] and at.selectbox(key="cv_preset").value == "maco"
    assert "cv_job" not in at.session_state and not at.error
    jitter = open_link("pages/class_model.py", jitter="999")
    assert "`jitter=999` cannot be used: jitter must be a whole number of pixels in 0..64" in notes(jitter)


# ---------------------------------------------------------------- faithfulness
@pytest.mark.slow
def test_a_faithfulness_link_with_an_unknown_method_falls_back_with_a_note():
    at = open_link("pages/faithfulness.py", methods="gradient,telepathy", stages="99", ig_steps="12")
    said = notes(at)
    assert "`methods=gradient,telepathy` cannot be used: it must be one of" in said
    assert "`stages=99` cannot be used" in said and "`ig_steps=12` cannot be used" in said
    assert list(at.multiselect(key="faith_methods").value) == ["gradient", "guided", "gradcam"]
    assert "Run the checks" in at.info[0].value  # nothing runs from a bad link


@pytest.mark.slow
def test_a_faithfulness_link_with_run_shows_the_checks():
    at = open_link("pages/faithfulness.py", image="espresso", methods="gradient", stages="1", step="3584", baseline="blurred",
                   ig_steps="8", run="1")
    finish_job(at, "faith_job")
    said = notes(at)  # no link value refused; 8 fixed steps leave Σ IG more than 5% off, and the page says so
    assert "cannot be used" not in said and "with 8 steps: more than 5%" in said
    assert len(at.get("plotly_chart")) == 2 and at.radio(key="faith_baseline").value == "blurred"
    assert at.query_params["run"] == "1" and at.query_params["methods"] == "gradient"
    assert "Figure (SVG)" in [b.label for b in at.get("download_button")]


# ---------------------------------------------------------------- segmentation
@pytest.mark.slow
def test_a_segmentation_link_restores_photo_class_preset_and_knobs_and_the_page_keeps_the_url():
    link = {"image": "espresso", "class": "967", "preset": "paper", "views": "1", "fg": "0.9", "iterations": "2"}
    at = open_link("pages/segmentation.py", **link)
    assert not notes(at) and not at.error
    assert at.selectbox(key="seg_image_demo").value == "espresso" and at.selectbox(key="seg_class").value == 967
    assert at.selectbox(key="seg_preset").value == "paper"
    assert (at.radio(key="seg_views").value, at.slider(key="seg_fg").value, at.slider(key="seg_bg").value,
            at.number_input(key="seg_iterations").value, at.sidebar.number_input(key="seg_gamma").value) == (1, 0.9, 0.3, 2, 150.0)
    assert any("paper (changed)" in c.value for c in at.caption)
    assert any(c.startswith("After edits: box") for c in (c.value for c in at.caption))
    assert at.query_params == link
    assert "Link to this view" in str(at.get("popover")[0].proto)
    at.selectbox(key="seg_preset").set_value("gradcam-cut").run()  # a preset chosen: its own knobs, none in the URL
    assert at.slider(key="seg_fg").value == 0.4 and at.radio(key="seg_views").value == "full"
    assert at.query_params == {"image": "espresso", "class": "967"}  # the default preset is left out too


@pytest.mark.slow
def test_a_bad_segmentation_link_falls_back_to_the_presets_knobs_with_a_note_for_each_value():
    at = open_link("pages/segmentation.py", image="dog", preset="magic", views="3", fg="0.05", iterations="99", gamma="-1")
    said = notes(at)
    for name in ("image=dog", "preset=magic", "views=3", "fg=0.05", "iterations=99", "gamma=-1"):
        assert f"`{name}` cannot be used" in said, said
    assert "Need 0 ≤ background < foreground ≤ 1" in said  # fg below the preset's background level
    assert at.selectbox(key="seg_preset").value == "gradcam-cut" and at.slider(key="seg_fg").value == 0.4
    assert at.number_input(key="seg_iterations").value == 2 and not at.error
    assert at.query_params == {}
    crossed = open_link("pages/segmentation.py", preset="paper", fg="0.2", bg="0.5")  # each fine alone, not together
    assert "`fg=0.2` cannot be used" in notes(crossed) and "`bg=0.5` cannot be used" in notes(crossed)
    assert (crossed.slider(key="seg_fg").value, crossed.slider(key="seg_bg").value) == (0.95, 0.3)
    assert crossed.query_params == {"preset": "paper"}
