"""The hosted Space's page as a visitor sees it (conftest's `space`: the serving-only install
with the preloaded public repos): every tab it shows works, and none shows a warning. Headless
Debian Chromium, as tests/browser/test_page.py drives it (and skips or fails as it does)."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_page import (EXAMPLE_IMAGE, _app_page, block, distinct_sources,
                                     generate_and_wait, natural_size, open_tab, start_webcam)

pytestmark = pytest.mark.browser
SHOWN = ["Text-to-Image", "Image-to-Image", "Inpaint", "Live"]


@pytest.fixture
def space_page(browser, space):
    url, _, _ = space
    yield from _app_page(browser, url, permissions=["camera"])


def test_the_space_shows_only_tabs_that_work_and_no_warning(space_page):
    tabs = space_page.get_by_role("tab").all_inner_texts()
    assert [t.strip() for t in tabs[:len(SHOWN)]] == SHOWN
    assert "Segmind-VegaRT" not in tabs and "FP16 vs INT8" not in tabs
    expect(space_page.locator("#stand-in-banner")).to_have_count(0)
    expect(space_page.locator("#build-progress")).to_have_count(0)
    expect(space_page.locator("#status")).to_contain_text("SDXL-Turbo")


def test_text_image_and_inpaint_tabs_generate(space_page):
    panel = open_tab(space_page, "Text-to-Image")
    panel.get_by_label("Prompt", exact=True).fill("a lighthouse on a cliff at dawn")
    image, timings = generate_and_wait(panel)
    assert natural_size(image) == (512, 512)
    expect(timings).to_contain_text("TAESD")  # the preloaded fast decoder decodes
    panel = open_tab(space_page, "Image-to-Image")
    source = block(panel, "Image (center-cropped")
    source.locator("input[type=file]").set_input_files(EXAMPLE_IMAGE)
    expect(source.locator("img")).to_be_visible(timeout=15_000)
    panel.get_by_label("Prompt", exact=True).fill("a castle on the hills at dusk")
    image, _ = generate_and_wait(panel)
    assert natural_size(image) == (512, 512)

    panel = open_tab(space_page, "Inpaint")
    editor = block(panel, "Image (paint the region")
    canvas = editor.locator("canvas").first
    expect(canvas).to_be_attached(timeout=15_000)  # an upload before it is set up is lost
    editor.locator("input[type=file]").first.set_input_files(EXAMPLE_IMAGE)
    expect(canvas).to_be_visible(timeout=15_000)
    space_page.wait_for_timeout(1000)  # the background is drawn on the canvas
    editor.get_by_role("button", name="Brush", exact=True).click()
    box = canvas.bounding_box()  # one stroke across the middle: the region to repaint
    space_page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] / 2)
    space_page.mouse.down()
    space_page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] / 2,
                          steps=20)
    space_page.mouse.up()
    panel.get_by_label("Prompt", exact=True).fill("a full moon")
    image, _ = generate_and_wait(panel)
    assert natural_size(image) == (512, 512)


def test_live_frames_flow(space_page):
    panel = open_tab(space_page, "Live")
    expect(panel.locator("#live-notice")).not_to_contain_text("not exported")
    start_webcam(panel)
    distinct_sources(block(panel, "Live").locator("img"), 2, timeout_s=120)
