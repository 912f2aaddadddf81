"""AppTest of the review page: the queue, accept / next / previous, history, a conflict between two
sessions, the COCO download, and the message when no workspace is set. Painting is in the browser test."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.render import fit
from engine.runs import coco
from engine.runs import workspace as ws
from engine.runs.demo_workspace import MARKER, demo_workspace_dir
from tests.conftest import ROOT, finish_job, open_page
from tests.test_page_links import notes, open_link
from tests.test_page_segmentation import BackgroundSpy, canvas_background_url
from tests.test_workspace import BOX, H, W, edited, make_workspace, two_colour

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    space = make_workspace(tmp_path, {"a": 0.9, "b": 0.1, "c": 0.5})
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path))
    return space


def current(at) -> str:
    return at.selectbox(key="review_stem").value


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """No operator's workspace; HOME and the cache directory in a temporary folder."""
    monkeypatch.delenv("DEEP_INSIDE_WORKSPACE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_without_a_workspace_the_page_says_how_to_set_one_and_offers_a_demo(cache):
    at = open_page("pages/review.py")
    assert any("DEEP_INSIDE_WORKSPACE" in i.value and "--workspace" in i.value for i in at.info)
    assert at.button(key="rev_build_demo").label == "Build a demo workspace from the 5 bundled photos"
    assert not (cache / "deep-inside").exists()  # nothing is made until asked


def test_the_demo_workspace_is_built_in_the_cache_directory_on_request_and_then_reused(cache):
    before = sorted(p.name for p in ROOT.iterdir())
    at = open_link("pages/review.py", weights="random")  # the sidebar's model cuts the demo: random weights, quick
    at.button(key="rev_build_demo").click().run()
    finish_job(at, "rev_demo_job")
    at.run()  # the build's fragment saw it end and asked for the page again
    assert not at.exception and not at.error, [e.value for e in at.error]
    root = demo_workspace_dir()
    assert root == cache / "deep-inside" / "demo-workspace"
    made = json.loads((root / MARKER).read_text())
    assert made["demo"] and made["weights"] == "random" and len(made["photos"]) == 5
    assert sorted(p.name for p in (root / "images").iterdir()) == sorted(made["photos"])
    assert len(list((root / "segmentations").glob("*.json"))) == 5
    assert not list(root.parent.glob(".tmp-*"))  # built aside, renamed into place
    assert any("demo" in i.value and str(root) in i.value for i in at.info)
    assert "0 of 5 accepted" in at.get("progress")[-1].proto.text
    assert at.query_params["photo"] == at.selectbox(key="review_stem").value
    assert sorted(p.name for p in ROOT.iterdir()) == before  # nothing written into the repository

    stamp = (root / MARKER).stat().st_mtime_ns
    again = open_page("pages/review.py")  # another session: the demo opens at once, not rebuilt
    assert not again.get("button") or "rev_build_demo" not in [b.key for b in again.button]
    assert (root / MARKER).stat().st_mtime_ns == stamp and "0 of 5 accepted" in again.get("progress")[-1].proto.text
    first = again.selectbox(key="review_stem").value
    again.button(key="rev_accept").click().run()
    assert not again.exception and ws.open_workspace(root).load(first).status == "accepted"


def test_an_operators_workspace_wins_over_the_demo(cache, tmp_path, monkeypatch):
    root = demo_workspace_dir()
    make_workspace(root, {"demo_photo": 0.5})
    (root / MARKER).write_text("{}")
    make_workspace(tmp_path / "theirs", {"a": 0.9, "b": 0.1})
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path / "theirs"))
    at = open_page("pages/review.py")
    assert current(at) == "b" and not any("demo" in i.value for i in at.info)
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", "")
    demo = open_page("pages/review.py")
    assert current(demo) == "demo_photo" and any("demo" in i.value for i in demo.info)


def test_a_link_opens_its_photo_in_the_queue_and_a_stale_one_falls_back_to_the_head(workspace):
    at = open_link("pages/review.py", photo="a")
    assert current(at) == "a" and not notes(at) and at.query_params["photo"] == "a"
    at.button(key="rev_next").click().run()
    assert at.query_params["photo"] == current(at) != "a"  # the URL follows the queue
    stale = open_link("pages/review.py", photo="zebra")
    assert "`photo=zebra` cannot be used" in notes(stale)
    assert current(stale) == "b" and stale.query_params["photo"] == "b"


def test_the_queue_starts_with_the_worst_and_accept_saves_and_moves_on(workspace):
    at = open_page("pages/review.py")
    assert current(at) == "b"  # quality 0.1: the likeliest bad mask first
    assert "0 of 3 accepted" in at.get("progress")[0].proto.text
    at.button(key="rev_accept").click().run()
    assert not at.exception, at.exception
    assert workspace.load("b").status == "accepted" and workspace.load("b").version == 1
    assert current(at) == "c" and "1 of 3 accepted" in at.get("progress")[0].proto.text
    assert any("Saved b as accepted" in s.value for s in at.success)
    at.button(key="rev_previous").click().run()
    assert current(at) == "b"  # the queue as it was: b, c, a
    at.button(key="rev_next").click().run()
    assert current(at) == "c" and workspace.load("c").version == 0  # moving on without strokes saves nothing


def test_history_restores_an_older_version(workspace):
    entry = workspace.load("b")
    mask, seeds = edited(entry)
    workspace.save("b", mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=0, status="refined")
    at = open_page("pages/review.py")
    assert current(at) == "b"
    at.selectbox(key="rev_history_b_0_1").set_value(0).run()
    at.button(key="rev_restore").click().run()
    assert not at.exception, at.exception
    restored = workspace.load("b")
    assert restored.version == 2 and (restored.mask_hw == entry.mask_hw).all()
    assert at.selectbox(key="rev_history_b_0_2").value == 2 and at.button(key="rev_restore").disabled  # opens on the new version


def test_a_save_over_newer_work_is_refused_and_the_newer_version_shown(workspace):
    at = open_page("pages/review.py")
    assert current(at) == "b"
    entry = workspace.load("b")  # another session saves b first
    mask, seeds = edited(entry)
    workspace.save("b", mask_hw=mask, seeds_hw=seeds, record=entry.record, base_version=0, status="refined")
    at.button(key="rev_accept").click().run()
    assert not at.exception, at.exception
    assert any("saved elsewhere" in e.value for e in at.error), [e.value for e in at.error]
    assert workspace.load("b").version == 1 and workspace.load("b").status == "refined"  # theirs kept
    assert current(at) == "b" and any("version 1 (refined)" in c.value for c in at.caption)


def test_the_coco_export_is_offered(workspace):
    at = open_page("pages/review.py")
    labels = [b.label for b in at.get("download_button")]
    assert any("COCO" in label for label in labels)
    assert isinstance(workspace, ws.Workspace)


def test_a_demo_build_stopped_by_its_viewer_leaves_nothing_and_can_be_started_again(cache):
    at = open_link("pages/review.py", weights="random")
    at.button(key="rev_build_demo").click().run()
    job = at.session_state["rev_demo_job"]
    job.cancel("its viewer left")  # what ui.jobs' watcher does when the tab closes
    finish_job(at, "rev_demo_job")
    root = demo_workspace_dir()
    assert job.state == "cancelled" and not root.exists() and not list(root.parent.glob(".tmp-*"))
    assert any("demo build was stopped" in i.value for i in at.info) and at.button(key="rev_build_demo")


# ------------------------------------------------------------------------------------------------ several objects
@pytest.fixture
def objects(tmp_path, monkeypatch):
    """Photo "a": segment-folder's object 0 and two imported ones (person, dog; the dog the worst); photo "b": object 0."""
    space = make_workspace(tmp_path, {"a": 0.9, "b": 0.5})
    mask = space.load("a").mask_hw
    person, dog = ws.Category("person", id=1), ws.Category("dog", id=2)
    (tmp_path / "categories.json").write_text(json.dumps([person.to_json(), dog.to_json()]))
    top = mask.copy()
    top[mask.shape[0] // 2:] = False
    space.add_object("a", mask_hw=top, category=person, status="imported", quality=0.3)
    space.add_object("a", mask_hw=mask & ~top, category=dog, status="imported", quality=0.05)
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path))
    return space


def chosen(at) -> int:
    return at.selectbox(key=f"rev_object_{current(at)}").value


def test_a_photo_lists_its_objects_and_opens_the_worst(objects):
    at = open_link("pages/review.py", weights="random")
    assert current(at) == "a" and chosen(at) == 2  # the dog: quality 0.05, the worst object of all
    table = at.dataframe[1].value  # the photo's objects (the queue's table is the first)
    assert list(table["object"]) == [0, 1, 2] and list(table["category"]) == ["class 285", "person", "dog"]
    assert list(table["status"]) == ["automatic", "imported", "imported"]
    assert list(table["area"]) == [o.area for o in objects.objects("a")]
    assert "0 of 4 accepted" in at.get("progress")[0].proto.text
    at.button(key="rev_accept").click().run()  # accept the dog: the next object in the queue opens, the person
    assert not at.exception, at.exception
    assert objects.load("a", obj=2).status == "accepted" and objects.load("a", obj=2).version == 1
    assert (current(at), chosen(at)) == ("a", 1)
    assert objects.load("a").status == "automatic"  # object 0 untouched


def test_an_object_is_chosen_renamed_deleted_and_added(objects):
    at = open_link("pages/review.py", weights="random")
    at.selectbox(key="rev_object_a").set_value(1).run()
    assert chosen(at) == 1 and any("object 1: person" in c.value for c in at.caption)
    at.toggle(key="rev_category_open_a_1").set_value(True).run()
    assert not at.exception, at.exception
    names = at.selectbox(key="rev_category_a_1").options
    assert names[0] == "a new name…" and len(names) == 1 + 5 + 2 + 995
    assert names[6:8] == ["person (imported, id 1)", "dog (imported, id 2)"] and all("ImageNet n" in n for n in names[1:6])
    at.text_input(key="rev_category_name_a_1").set_value("bicycle").run()
    at.button(key="rev_set_category").click().run()
    assert not at.exception, at.exception
    renamed = objects.load("a", obj=1)
    assert renamed.category == ws.Category("bicycle") and renamed.version == 1 and renamed.status == "refined"
    at.button(key="rev_delete").click().run()
    assert not at.exception, at.exception
    assert objects.load("a", obj=1).status == "deleted" and objects.history("a", obj=1) == [0, 1, 2]
    assert 1 not in at.selectbox(key="rev_object_a").options
    at.button(key="rev_add").click().run()  # an empty start, to be clicked or boxed on the canvas
    assert not at.exception, at.exception
    assert [o.obj for o in objects.objects("a")] == [0, 1, 2, 3] and objects.load("a", obj=3).status == "added"
    assert chosen(at) == 3 and objects.load("a", obj=3).mask_hw.sum() == 0


def test_an_imported_photo_gets_a_second_object_from_the_cut_for_a_class_and_both_export(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    (tmp_path / "segmentations").mkdir()
    Image.fromarray(two_colour(H, W, BOX)).save(tmp_path / "images" / "p.png")
    space = ws.open_workspace(tmp_path)
    imported = np.zeros((H, W), bool)
    imported[2:12, 2:15] = True
    space.add_object("p", mask_hw=imported, category=ws.Category("person", id=1), image="p.png", status="imported")
    monkeypatch.setenv("DEEP_INSIDE_WORKSPACE", str(tmp_path))
    at = open_link("pages/review.py", weights="random")
    assert (current(at), chosen(at)) == ("p", 1)
    at.radio(key="rev_add_start").set_value("cut").run()
    assert not at.exception, at.exception
    wanted = at.selectbox(key="rev_add_class").value  # the photo's top-1 class index, offered first
    at.button(key="rev_add").click().run()
    assert not at.exception, at.exception
    added = space.load("p", obj=2)
    assert chosen(at) == 2 and added.status == "added" and added.mask_hw.any()
    assert added.category.class_index == wanted and added.category.wnid
    at.button(key="rev_accept").click().run()  # the new object, then the imported one
    assert not at.exception, at.exception
    at.selectbox(key="rev_object_p").set_value(1).run()
    at.button(key="rev_accept").click().run()
    assert [o.status for o in space.objects("p")] == ["accepted", "accepted"]
    dataset = coco.export_coco(space)
    areas = sorted((a["category_id"], a["area"]) for a in dataset["annotations"])
    assert areas == [(1, int(imported.sum())), (2, int(added.mask_hw.sum()))]
    assert dataset["categories"] == [{"id": 1, "name": "person"}, {"id": 2, "name": added.category.name, "supercategory": "imagenet",
                                                                  "wnid": added.category.wnid}]


def test_the_canvas_shows_the_saved_mask_and_the_seeds_alone_stay_chosen_from_photo_to_photo(workspace, monkeypatch):
    spy = BackgroundSpy(monkeypatch)
    at = open_page("pages/review.py")
    assert current(at) == "b"
    shown = spy.last()
    assert np.array_equal(shown["mask"], fit(workspace.load("b").mask_hw, shown["shape"]))  # the saved mask, on the canvas
    assert canvas_background_url(at) == shown["url"]
    at.toggle(key="rev_show_mask").set_value(False).run()
    assert spy.last()["mask"] is None
    at.button(key="rev_next").click().run()
    assert current(at) == "c" and spy.last()["mask"] is None  # the view's choice is kept on the next photo
    at.toggle(key="rev_show_mask").set_value(True).run()
    assert np.array_equal(spy.last()["mask"], fit(workspace.load("c").mask_hw, spy.last()["shape"]))
