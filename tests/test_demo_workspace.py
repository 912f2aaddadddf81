"""The demo review workspace's place (the XDG cache rule) and its reuse; building one from the bundled
photos through the review page is in test_page_review.py and the browser test."""
from __future__ import annotations

import pytest

from engine.runs.demo_workspace import MARKER, build_demo_workspace, demo_workspace_dir, open_demo_workspace
from tests.test_workspace import make_workspace


def test_the_demo_lives_in_the_users_cache_directory():
    assert demo_workspace_dir({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == demo_workspace_dir({"XDG_CACHE_HOME": "/c"}) \
        and str(demo_workspace_dir({"XDG_CACHE_HOME": "/c"})) == "/c/deep-inside/demo-workspace"
    for unusable in ("", "relative/cache"):  # the XDG rule: unset, empty or relative means ~/.cache
        assert str(demo_workspace_dir({"XDG_CACHE_HOME": unusable, "HOME": "/h"})) == "/h/.cache/deep-inside/demo-workspace"
    assert str(demo_workspace_dir({"HOME": "/h"})) == "/h/.cache/deep-inside/demo-workspace"


def test_a_complete_demo_is_reused_and_an_unfinished_one_is_not_opened(tmp_path):
    root = tmp_path / "demo-workspace"
    make_workspace(root, {"cat": 0.5})
    assert open_demo_workspace(root) is None  # no demo.json: not finished
    (root / MARKER).write_text("{}")
    reused = build_demo_workspace(None, [], root)  # no model needed, nothing cut again
    assert [i.stem for i in reused.items()] == ["cat"]


def test_a_demo_needs_photos(tmp_path):
    with pytest.raises(ValueError, match="no photos"):
        build_demo_workspace(None, [], tmp_path / "demo-workspace")
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_stopped_build_leaves_nothing_behind(tmp_path, monkeypatch):
    """Stopped after the first of three photos: Cancelled, no workspace, no staging folder; the photos
    after the stop are never cut."""
    from engine.runs import demo_workspace
    from engine.stopping import Cancelled

    cut = []

    def fake_segment_photos(model, images, out_dir, *, preset, on_step):
        for done, image in enumerate(images, 1):
            cut.append(image.name)
            on_step(done, len(images))
        return [{"image": i.name} for i in images]

    monkeypatch.setattr(demo_workspace, "segment_photos", fake_segment_photos)
    photos = []
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(b"photo")
        photos.append(tmp_path / name)
    root, done = tmp_path / "cache" / "demo-workspace", []
    with pytest.raises(Cancelled):
        build_demo_workspace(None, photos, root, on_step=lambda d, t: done.append(d), should_stop=lambda: bool(done))
    assert cut == ["a.jpg"] and done == [1]
    assert not root.exists() and not list(root.parent.glob(".tmp-*"))
    with pytest.raises(Cancelled):  # stopped before the first photo
        build_demo_workspace(None, photos, root, should_stop=lambda: True)
    assert cut == ["a.jpg"] and not list(root.parent.glob(".tmp-*"))
