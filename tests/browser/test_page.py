"""The page as a user sees it: headless Debian Chromium driven by Playwright against the app
launched in-process (conftest's `app_url`, serving the tiny random-weight stand-in).

Skipped where playwright or /usr/bin/chromium is missing, except under CI (which installs both),
where that fails instead so a broken setup cannot pass as a skip. Never downloads a browser.
Screenshots of the tabs land in a temporary folder; `python -m pytest tests/browser
--screenshots assets/screenshots` refreshes the README's."""

import io
import os
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_IMAGE = ROOT / "assets" / "examples" / "dusk-hills.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic",
                 # A fake camera (a moving test pattern), allowed without asking: the Live tab.
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
GENERATION_TIMEOUT_MS = 60_000  # the first request also loads and compiles the stand-in
TIMINGS = re.compile(r"\d+\.\d\d s in all \(.+\) · seed \d+")


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


if (_reason := _missing()) is not None:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run under CI: {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser


def _app_page(browser, app_url, **context_options):
    """A fresh tab on the app, loaded; uncaught page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, **context_options)
    page = context.new_page()
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(app_url)
    expect(page.locator("#status")).to_be_visible(timeout=30_000)
    yield page
    context.close()
    assert not page_errors, f"uncaught errors in the page: {page_errors}"


@pytest.fixture
def page(browser, app_url):
    """A fresh tab on the app, loaded; uncaught page errors fail the test."""
    yield from _app_page(browser, app_url)


def open_tab(page: Page, name: str):
    """Click the tab and return its panel (the only visible tabpanel)."""
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.get_by_role("tabpanel")  # hidden panels are not in the accessibility tree
    expect(panel).to_have_count(1)
    return panel


def block(panel, label: str):
    """A component's block, found by the label gradio shows on it."""
    return panel.locator(".block").filter(
        has=panel.page.locator("[data-testid=block-label]", has_text=label))


def generate_and_wait(panel):
    """Click this tab's Generate; return the loaded result <img> and the timings text."""
    panel.get_by_role("button", name="Generate", exact=True).click()
    image = block(panel, "Result").locator("img")
    expect(image).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
    expect(image).to_have_js_property("complete", True)
    timings = panel.get_by_text("in all")
    expect(timings).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
    expect(timings).to_have_text(TIMINGS)
    return image, timings


def natural_size(image) -> tuple[int, int]:
    return tuple(image.evaluate("img => [img.naturalWidth, img.naturalHeight]"))


@pytest.fixture(scope="session")
def screenshots(request, tmp_path_factory) -> Path:
    folder = request.config.getoption("--screenshots")
    folder = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=folder / name, full_page=True)


def test_text_to_image(page, screenshots):
    expect(page.locator("#stand-in-banner")).to_be_visible()
    expect(page.locator("#stand-in-banner")).to_contain_text("random weights")
    expect(page.locator("#status")).to_contain_text("Serving")

    panel = open_tab(page, "Text-to-Image")
    panel.get_by_label("Prompt", exact=True).fill("a lighthouse on a cliff at dawn")
    image, _ = generate_and_wait(panel)

    assert natural_size(image) == (512, 512)
    expect(panel.get_by_label("Seed used", exact=True)).not_to_have_value("")
    screenshot(page, screenshots, "text-to-image.png")


def test_image_to_image(page, screenshots):
    panel = open_tab(page, "Image-to-Image")
    source = block(panel, "Image (center-cropped")
    source.locator("input[type=file]").set_input_files(EXAMPLE_IMAGE)
    expect(source.locator("img")).to_be_visible(timeout=15_000)  # the uploaded preview

    panel.get_by_label("Prompt", exact=True).fill("a castle on the hills at dusk, oil painting")
    image, _ = generate_and_wait(panel)

    assert natural_size(image) == (512, 512)
    screenshot(page, screenshots, "image-to-image.png")


def test_inpaint_changes_only_the_painted_stroke(page, screenshots):
    panel = open_tab(page, "Inpaint")
    editor = block(panel, "Image (paint the region")
    # The editor's canvas first: an upload before it is set up is lost (a page error).
    canvas = editor.locator("canvas").first
    expect(canvas).to_be_attached(timeout=15_000)
    editor.locator("input[type=file]").first.set_input_files(EXAMPLE_IMAGE)
    expect(canvas).to_be_visible(timeout=15_000)
    page.wait_for_timeout(1000)  # the background is drawn on the canvas
    editor.get_by_role("button", name="Brush", exact=True).click()
    box = canvas.bounding_box()
    # One stroke across the middle.
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.04 * step),
                        box["y"] + box["height"] * 0.5, steps=2)
    page.mouse.up()

    panel.get_by_label("Prompt", exact=True).fill("a full moon")
    image, _ = generate_and_wait(panel)
    assert natural_size(image) == (512, 512)
    result = page.request.get(image.get_attribute("src")).body()
    pixels = np.asarray(Image.open(io.BytesIO(result)).convert("RGB"))
    source = np.asarray(Image.open(EXAMPLE_IMAGE).convert("RGB"))
    changed = (pixels != source).any(axis=-1)
    # A stroke is a band across the middle: some pixels changed, most are the source's.
    assert 0.005 < changed.mean() < 0.5
    rows = np.flatnonzero(changed.any(axis=1))
    assert rows.min() > 128 and rows.max() < 384  # around the middle row, not everywhere
    screenshot(page, screenshots, "inpaint.png")


def test_empty_prompt_shows_error(page):
    panel = open_tab(page, "Text-to-Image")
    panel.get_by_label("Prompt", exact=True).fill("")
    panel.get_by_role("button", name="Generate", exact=True).click()

    expect(page.get_by_text("Please enter a prompt")).to_be_visible(timeout=15_000)
    expect(block(panel, "Result").locator("img")).to_have_count(0)


def test_fp16_vs_int8_side_by_side(page, screenshots):
    panel = open_tab(page, "FP16 vs INT8")
    panel.get_by_role("button", name="Compare FP16 and INT8", exact=True).click()
    images = [block(panel, label).locator("img") for label in ("FP16", "INT8")]
    for image in images:
        expect(image).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
        expect(image).to_have_js_property("complete", True)
    expect(panel.get_by_text("as fast")).to_be_visible()
    expect(panel.get_by_text("PSNR")).to_be_visible()
    assert [natural_size(image) for image in images] == [(512, 512)] * 2
    left, right = (image.bounding_box() for image in images)
    assert right["x"] > left["x"] + left["width"] / 2  # side by side, not stacked
    expect(panel.locator(".vega-embed, canvas, svg").first).to_be_visible()  # the bar chart
    screenshot(page, screenshots, "fp16-vs-int8.png")


def test_a_batch_shows_each_image_with_its_seed(page):
    panel = open_tab(page, "Text-to-Image")
    batch = panel.locator(".batch-gallery")
    expect(batch).to_be_hidden()  # one image: nothing to show twice
    panel.get_by_label("number input for Images").fill("3")
    panel.get_by_label("number input for Images").press("Tab")
    expect(batch).to_be_visible()
    panel.get_by_label("Random seed", exact=True).uncheck()
    panel.get_by_label("Seed", exact=True).fill("21")
    panel.get_by_label("Prompt", exact=True).fill("a red fox")
    panel.get_by_role("button", name="Generate", exact=True).click()
    expect(panel.get_by_text("3 of 3 images")).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
    expect(batch.locator("img")).to_have_count(3)
    for seed in (21, 22, 23):
        expect(batch.get_by_text(f"seed {seed}", exact=True)).to_be_visible()
    expect(panel.locator(".session-gallery img")).to_have_count(3)  # each result kept once


def test_the_session_gallery_holds_this_sessions_images_only(page, browser, app_url):
    panel = open_tab(page, "Text-to-Image")
    panel.get_by_label("Prompt", exact=True).fill("a red fox")
    gallery = panel.locator(".session-gallery img")
    for count in (1, 2):
        panel.get_by_role("button", name="Generate", exact=True).click()
        expect(gallery).to_have_count(count, timeout=GENERATION_TIMEOUT_MS)
    other = browser.new_context().new_page()  # another user: an empty gallery
    other.goto(app_url)
    expect(other.locator("#status")).to_be_visible(timeout=30_000)
    expect(other.locator(".session-gallery img")).to_have_count(0)
    other.context.close()


def test_results_are_not_upload_targets(page):
    for tab in ("Text-to-Image", "Image-to-Image", "Inpaint"):
        panel = open_tab(page, tab)
        for label in ("Result", "This session's images"):
            expect(block(panel, label).locator("input[type=file]")).to_have_count(0)
            expect(block(panel, label)).not_to_contain_text("Drop Image Here")


def test_a_first_start_shows_its_progress_and_offers_each_part_once_built(browser, models_dir,
                                                                         tmp_path):
    """The page is up while the stand-ins are built; each part appears without a restart.
    The build's steps here copy the session's stand-ins, in the real build's order."""
    from pipelines.registry import Registry
    from ui.demo import LAUNCH_OPTIONS, build_demo
    from ui.first_start import StandInBuild

    empty = tmp_path / "models"
    steps = [("Tiny stand-in (fp16)", "tiny/fp16"), ("Tiny TAESD stand-in (fp16)", "tiny-taesd"),
             ("Tiny stand-in (int8)", "tiny/int8")]
    gates = [threading.Event() for _ in steps]

    def run(on_step):
        for done, (name, part) in enumerate(steps):
            on_step(done, len(steps), name)
            assert gates[done].wait(120)
            shutil.copytree(models_dir / part, empty / part)
        on_step(len(steps), len(steps), "")

    build = StandInBuild(run)
    demo = build_demo(Registry(empty), build=build)
    build.start()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **LAUNCH_OPTIONS)
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        page.goto(demo.local_url)
        progress = page.locator("#build-progress")
        expect(progress).to_contain_text("step 1 of 3: Tiny stand-in (fp16)", timeout=30_000)
        gates[0].set()
        expect(progress).to_contain_text("step 2 of 3", timeout=30_000)
        panel = open_tab(page, "Text-to-Image")
        decoder = panel.get_by_role("checkbox", name=re.compile("^Fast decoder"))
        expect(decoder).to_be_disabled()
        int8 = panel.get_by_role("radio", name="int8", exact=True)
        expect(int8).to_have_count(0)
        for gate in gates[1:]:
            gate.set()
        expect(progress).to_contain_text("All 3", timeout=30_000)
        expect(decoder).to_be_enabled(timeout=10_000)  # no reload, no restart
        expect(int8).to_have_count(1, timeout=10_000)
        panel.get_by_label("Prompt", exact=True).fill("a red fox")
        image, timings = generate_and_wait(panel)
        expect(timings).to_contain_text("Tiny TAESD stand-in")
    finally:
        for gate in gates:
            gate.set()
        context.close()
        demo.close()


def distinct_sources(image, count: int, timeout_s: float) -> set[str]:
    """Watch an <img> until it has shown `count` different files (gradio names each output
    file by its content, so a new src is a new picture)."""
    seen, deadline = set(), time.monotonic() + timeout_s
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} distinct frames arrived"
        if image.count():
            seen.add(image.first.get_attribute("src"))
        image.page.wait_for_timeout(100)
    return seen


@pytest.fixture
def camera_page(browser, app_url):
    """Like `page`, in a context allowed to use the (fake) camera."""
    yield from _app_page(browser, app_url, permissions=["camera"])


def start_webcam(panel):
    """Turn the Live tab's webcam on and start streaming; returns the webcam's block."""
    webcam = block(panel, "Webcam")
    webcam.get_by_role("button", name="Click to Access Webcam").click()
    # The button's accessible name is not "Record": find it by its text (VERIFIED.md).
    webcam.locator("button", has_text="Record").click()
    return webcam


def text_to_image_is_served(app_url) -> bool:
    """Another user's generation runs: the stream gave the model back."""
    from gradio_client import Client

    path, *_ = Client(app_url, verbose=False).predict(
        "a red fox", 3, False, 1, 512, 512, api_name="/text_to_image")
    return Path(path).stat().st_size > 0


def test_live_webcam_frames_flow_until_stop(camera_page, app_url, screenshots):
    panel = open_tab(camera_page, "Live")
    expect(panel.locator("#live-notice")).not_to_contain_text("not exported")
    webcam = start_webcam(panel)

    output = block(panel, "Live").locator("img")
    distinct_sources(output, 3, timeout_s=GENERATION_TIMEOUT_MS / 1000 + 60)
    expect(panel.locator("#live-info")).to_contain_text("frames/s")
    expect(panel.locator("#live-info")).to_contain_text("384×384")
    # Frames keep replacing the picture (its size reads 0 while one loads): retry.
    for side in ("naturalWidth", "naturalHeight"):
        expect(output.first).to_have_js_property(side, 384, timeout=10_000)
    screenshot(camera_page, screenshots, "live.png")

    webcam.locator("button", has_text="Stop").click()
    expect(webcam.locator("button", has_text="Record")).to_be_visible(timeout=10_000)
    # A frame already on its way may still land; then no new one for seconds (streaming,
    # a frame came every half second or so).
    last, still_since, deadline = None, time.monotonic(), time.monotonic() + 30
    while time.monotonic() - still_since < 4:
        assert time.monotonic() < deadline, "frames kept coming after Stop"
        source = output.first.get_attribute("src")
        if source != last:
            last, still_since = source, time.monotonic()
        camera_page.wait_for_timeout(200)
    assert text_to_image_is_served(app_url)


def test_leaving_the_page_ends_the_live_stream(camera_page, app_url, monkeypatch):
    from pipelines import generate

    runs, real_run = [], generate.run  # the app runs in this process: count its runs
    monkeypatch.setattr(generate, "run", lambda *args, **kwargs: (
        runs.append(time.monotonic()), real_run(*args, **kwargs))[1])
    panel = open_tab(camera_page, "Live")
    start_webcam(panel)
    distinct_sources(block(panel, "Live").locator("img"), 2,
                     timeout_s=GENERATION_TIMEOUT_MS / 1000 + 60)
    camera_page.close()  # mid-stream
    closed = time.monotonic()
    time.sleep(6)
    assert not [t for t in runs if t > closed + 2], "frames kept running after the page left"
    assert text_to_image_is_served(app_url)


def test_live_sketch_is_transformed_after_each_stroke(page, screenshots):
    panel = open_tab(page, "Live")
    panel.get_by_label("Sketch", exact=True).check()
    info = panel.locator("#live-info")
    expect(info).to_contain_text("Pick the brush")
    sketch = block(panel, "Sketch")
    sketch.get_by_role("button", name="Brush", exact=True).click()
    box = sketch.locator("canvas").first.bounding_box()
    x, y = box["x"] + box["width"] / 3, box["y"] + box["height"] / 3
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(20):
        page.mouse.move(x + 6 * step, y + 4 * step)
    page.mouse.up()

    output = block(panel, "Live").locator("img")
    expect(output).to_be_visible(timeout=GENERATION_TIMEOUT_MS)
    expect(info).to_contain_text("384×384", timeout=GENERATION_TIMEOUT_MS)
    screenshot(page, screenshots, "live-sketch.png")
    sketch.get_by_role("button", name="Clear canvas", exact=True).click()
    expect(info).to_contain_text("Pick the brush", timeout=GENERATION_TIMEOUT_MS)  # blank again
