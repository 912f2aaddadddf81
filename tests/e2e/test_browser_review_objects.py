"""Several objects of one photo in a real browser (issue 27): a photo imported with someone else's mask
(`import-segmentations`, a COCO file), a second object added on the review page, its category set,
two clicks on the canvas make its mask, Accept saves it, and the page's COCO export has both objects
with their categories: the imported one kept, the new one appended.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from playwright.sync_api import expect

from engine.runs.workspace import open_workspace
from tests.e2e.browser import (
    as_json,
    click_photo,
    download,
    error_alert,
    expect_no_exception,
    open_page,
    settle,
    shot,
)
from tests.e2e.conftest import ROOT, streamlit_server

pytestmark = pytest.mark.e2e
PHOTO = ROOT / "tests" / "data" / "localisation" / "images" / "cat.jpg"  # 451 × 300
IMPORTED = [20, 20, 200, 20, 200, 150, 20, 150]  # a rectangle polygon (x, y pairs): someone else's mask
CLICKS = ((220, 330), (250, 390))  # (y, x) in the photo, both outside the imported mask


@pytest.fixture
def imported_workspace(tmp_path):
    """A workspace made by `import-segmentations` from a COCO file with one object of category "animal"."""
    (tmp_path / "photos").mkdir()
    shutil.copy(PHOTO, tmp_path / "photos" / "cat.jpg")
    coco = {"images": [{"id": 7, "file_name": "cat.jpg", "width": 451, "height": 300}],
            "annotations": [{"id": 70, "image_id": 7, "category_id": 3, "segmentation": [IMPORTED], "iscrowd": 0,
                             "area": 180 * 130, "bbox": [20, 20, 180, 130]}],
            "categories": [{"id": 3, "name": "animal"}]}
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    root = tmp_path / "workspace"
    done = subprocess.run([sys.executable, "-m", "engine", "import-segmentations", str(tmp_path / "photos"),
                           str(tmp_path / "instances.json"), "--out", str(root)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def _open(page, expander: str) -> None:
    page.locator('[data-testid="stExpander"] summary').filter(has_text=expander).click()
    settle(page)


def test_an_imported_photo_gets_a_second_object_by_two_clicks_with_its_category_and_both_export(browser, imported_workspace):
    space = open_workspace(imported_workspace)
    [imported] = space.items()
    assert (imported.obj, imported.status, imported.label) == (1, "imported", "animal")
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    context.set_default_timeout(120_000)
    page = context.new_page()
    try:
        with streamlit_server("streamlit-review-objects-server.log", {"DEEP_INSIDE_WORKSPACE": str(imported_workspace)}) as server:
            open_page(page, server.url, "review")
            expect(page.get_by_text("0 of 1 accepted")).to_be_visible()

            _open(page, "Add an object to this photo")  # an empty start, to be clicked on
            page.get_by_role("button", name="Add the object").click()
            settle(page)
            expect(page.get_by_text("Added object 2 to cat.")).to_be_visible()
            expect(page.get_by_text("0 of 2 accepted")).to_be_visible()

            _open(page, "This object: category, delete")
            page.get_by_text("Change the category").click()
            settle(page)
            page.get_by_label("New category name").fill("kitten")
            page.get_by_label("New category name").press("Enter")
            settle(page)
            page.get_by_role("button", name="Set the category").click()
            settle(page)
            expect(page.get_by_text("Object 2 of cat is now kitten.")).to_be_visible()
            picker = page.get_by_role("combobox", name=re.compile("Object to refine"))
            expect(picker).to_have_value(re.compile("^#2 kitten · refined"))  # the picker names the object anew, not as it was

            page.locator('[data-testid="stRadio"]').filter(has_text="Input").get_by_text("Clicks", exact=True).click()
            settle(page)
            canvas = page.locator("canvas.upper-canvas").first
            canvas.scroll_into_view_if_needed()
            for yx in CLICKS:  # "object" clicks: each spreads to the region it belongs to, shown on the canvas
                click_photo(page, canvas, yx, (300, 451))
            expect(page.get_by_text("Re-cut with your strokes")).to_be_visible()
            shot(page, "review_second_object")

            page.get_by_role("button", name="Accept").click()
            settle(page)
            expect(page.get_by_text("Saved cat object 2 as accepted.")).to_be_visible()
            expect(page.get_by_text("1 of 2 accepted")).to_be_visible()

            page.locator('[data-testid="stRadio"]').filter(has_text="Export").get_by_text("all objects (newest versions)").click()
            settle(page)
            exported = as_json(download(page, "COCO instances (JSON)"))
            expect(error_alert(page)).to_have_count(0)
            expect_no_exception(page)
    finally:
        context.close()

    added = space.load("cat", obj=2)
    assert (added.status, added.record["category"]["name"]) == ("accepted", "kitten")
    assert all(added.mask_hw[y - 2:y + 3, x - 2:x + 3].all() for y, x in CLICKS)  # both clicked places are the object
    assert not np.array_equal(added.mask_hw, space.load("cat", obj=1).mask_hw)
    assert sorted(c["name"] for c in exported["categories"]) == ["animal", "kitten"]
    ids = {c["name"]: c["id"] for c in exported["categories"]}
    assert ids["animal"] == 3 and ids["kitten"] != 3  # the imported id kept, the new category appended
    assert sorted(a["category_id"] for a in exported["annotations"]) == sorted((3, ids["kitten"]))
    assert {a["area"] for a in exported["annotations"] if a["category_id"] == ids["kitten"]} == {int(added.mask_hw.sum())}
