"""The §4 page and the faithfulness page, driven by Streamlit's AppTest."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, finish_job, open_page


def captions(at: AppTest) -> list[str]:
    return [e.proto.imgs[0].caption for e in at.get("image")]


@pytest.mark.slow
def test_backward_rules_page_shows_three_rules_with_latex_and_reconstructions():
    at = open_page("pages/backward_rules.py")
    assert len(at.latex) == 3 and r"\mathbb{1}(R_{n+1} > 0)" in at.latex[1].value
    assert sum("max-abs map" in c for c in captions(at)) == 3
    assert any(c.startswith("Centre view · channel") for c in captions(at))
    first = at.get("image")[4].proto.imgs[0].url
    at.selectbox(key="rules_channel").set_value(3).run()
    assert not at.exception
    assert any(c.startswith("Centre view · channel 3 ") for c in captions(at))
    assert at.get("image")[4].proto.imgs[0].url != first
    layers = at.selectbox(key="rules_layer").options
    at.selectbox(key="rules_layer").set_value(layers[-1].split(" · ")[0]).run()
    assert not at.exception


@pytest.mark.slow
def test_faithfulness_page_runs_the_checks_on_request_and_shows_completeness():
    at = open_page("pages/faithfulness.py")
    assert not at.get("plotly_chart") and "Run the checks" in at.info[0].value
    assert [m.label for m in at.metric] == ["Σ IG", "S(x) − S(x')", "Gap", "Steps used"]
    steps, gap = int(at.metric[3].value), at.metric[2].value  # adaptive by default: 32, 64, ... until within 5%
    assert steps in (32, 64, 128, 256) and (float(gap.split("(")[1].rstrip("%)")) <= 5.0 or steps == 256)
    at.multiselect(key="faith_methods").set_value(["gradient", "gradcam"])
    at.slider(key="faith_stages").set_value(2)
    at.selectbox(key="faith_step").set_value(3584)
    at.button(key="faith_run").click().run()
    assert not at.exception, at.exception
    finish_job(at, "faith_job")
    charts = [str(c.proto) for c in at.get("plotly_chart")]
    assert len(charts) == 2 and "Spearman" in charts[0] and "gradcam insertion (AUC" in charts[1]
    at.select_slider(key="faith_ig_steps").set_value(8)  # fixed steps: the adaptive default was checked above
    at.radio(key="faith_baseline").set_value("blurred").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2  # results stay while the request is unchanged


def test_faithfulness_completeness_stops_when_its_viewer_has_gone_and_caches_nothing(monkeypatch):
    """Integrated Gradients' completeness runs on the page's own thread: a viewer gone (tab closed, or on
    another page) stops it before its next pass, with no error and nothing cached; the viewer back, it runs."""
    import streamlit as st

    import ui.jobs

    gone, asked = [True], []
    monkeypatch.setattr(ui.jobs, "viewer_gone", lambda page: lambda: asked.append(page) or gone[0])
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("pages/faithfulness.py").run()
    assert not at.exception and not at.error, (at.exception, at.error)
    assert asked == ["faithfulness"] and not at.metric  # asked before the first pass: none ran
    gone[0] = False
    at.session_state["faith_ig_steps"] = 8
    at.run()
    assert not at.exception, at.exception
    assert [m.label for m in at.metric] == ["Σ IG", "S(x) − S(x')", "Gap", "Steps used"] and at.metric[3].value == "8"
    assert len(asked) == 1 + 1  # one pass of 8 path images (batches of 48), asked once
