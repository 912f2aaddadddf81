"""The §4 page and the faithfulness page, driven by Streamlit's AppTest."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

import ui.jobs
from engine.attribution import methods
from tests.conftest import finish_job, open_page
from tests.test_page_links import open_link


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


class _AllGone(dict):
    """ui.jobs' record of closed tabs, as its watcher keeps it, with every session gone long ago."""

    def get(self, key, default=None):
        return 0.0


@pytest.mark.slow
def test_faithfulness_completeness_is_not_worked_out_for_a_viewer_who_has_gone(monkeypatch):
    """The completeness check runs on the session's script thread as the page opens: a tab closed meanwhile must
    not leave it integrating (the server stayed busy for seconds after the leavers had gone, bench_audience)."""
    passes = []
    real = methods.score_gradient
    monkeypatch.setattr(methods, "score_gradient", lambda *args, **kwargs: (passes.append(1), real(*args, **kwargs))[1])
    monkeypatch.setattr(ui.jobs, "_gone_since", _AllGone())
    link = dict(image="rocket", baseline="blurred", ig_steps="32")  # a check no other test has cached
    at = open_link("pages/faithfulness.py", **link)
    assert not at.metric and not passes  # stopped before its first pass; nothing half-made cached
    monkeypatch.setattr(ui.jobs, "_gone_since", {})  # the same request, for a viewer who is there
    at.run()
    assert not at.exception and [m.label for m in at.metric][-1] == "Steps used" and int(at.metric[3].value) == 32 and passes
