"""The app launched in-process, driven through gradio_client as an API user would."""

import json
import os
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

import app
from pipelines.registry import Registry
from ui import examples, results
from ui.demo import MAIN_MODELS

EXAMPLE = str(examples.IMAGE)


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def text_to_image(client, prompt="a red fox", seed=3, randomize=False, steps=1, width=512,
                  height=512):
    return client.predict(prompt, seed, randomize, steps, width, height, api_name="/text_to_image")


def image_to_image(client, path=EXAMPLE, prompt="a castle", strength=0.5, steps=2, seed=3,
                   randomize=False):
    return client.predict(handle_file(path), prompt, strength, steps, seed, randomize,
                          api_name="/image_to_image")


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_both_tasks_have_api_names(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/text_to_image", "/image_to_image"} <= set(endpoints)


def test_text_to_image_returns_image_seed_and_timings(client):
    path, seed, info, _ = text_to_image(client, width=768, height=512)
    image = Image.open(path)
    assert image.size == (768, 512) and image.format == "PNG"
    assert seed == 3
    for stage in ("text encoders", "UNet", "decoder", "in all"):
        assert stage in info


def test_same_seed_same_image_through_the_api(client):
    first, again = text_to_image(client, seed=5), text_to_image(client, seed=5)
    assert np.array_equal(pixels(first[0]), pixels(again[0]))
    assert not np.array_equal(pixels(first[0]), pixels(text_to_image(client, seed=6)[0]))


def test_random_seed_is_shown(client):
    _, seed, info, _ = text_to_image(client, randomize=True)
    assert f"seed {seed}" in info


def test_image_to_image_returns_the_model_size(client):
    path, seed, info, _ = image_to_image(client, steps=1, strength=0.5)
    assert Image.open(path).size == (512, 512) and seed == 3
    assert "VAE encoder" in info and "Steps raised from 1 to 2" in info


@pytest.mark.parametrize("call, message", [
    (lambda c: text_to_image(c, prompt=""), "Please enter a prompt"),
    (lambda c: text_to_image(c, width=500), "multiple of 64"),
    (lambda c: text_to_image(c, steps=7), "between 1 and 4"),  # the model's own range
    (lambda c: image_to_image(c, path=__file__), "not an image"),
])
def test_bad_input_gets_a_clear_error_and_the_server_goes_on(client, call, message):
    with pytest.raises(AppError, match=message):
        call(client)
    path, _, _, _ = text_to_image(client)
    assert Image.open(path).size == (512, 512)


def test_page_says_it_serves_the_stand_in(app_url):
    config = httpx.get(f"{app_url}config", timeout=30).json()
    texts = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"])
    assert "serves the Tiny stand-in" in texts and "python -m export sdxl-turbo" in texts
    # Each variant with what its UNet's graph is (read from the IR, not the folder's name).
    assert ("Serving **Tiny stand-in** (fp16: FP16 weights, int8: INT8 weights and "
            "activations)") in texts


def test_a_real_exported_model_is_preferred_over_the_stand_in(tmp_path):
    for model in ("tiny", "sdxl-turbo"):
        (tmp_path / model / "fp16").mkdir(parents=True)
        (tmp_path / model / "fp16" / "model_index.json").write_text("{}")
    assert Registry(tmp_path).served(MAIN_MODELS)[0] == "sdxl-turbo"


@pytest.mark.parametrize("argv, ok", [
    ([], True),
    (["--share"], False),
    (["--share", "--auth", "ann:secret"], True),
    (["--share", "--share-without-auth"], True),
    (["--auth", "no-colon"], False),
])
def test_share_needs_auth(argv, ok, monkeypatch):
    monkeypatch.delenv("TURBO_AUTH", raising=False)
    if ok:
        app.parse_settings(argv)
    else:
        with pytest.raises(SystemExit):
            app.parse_settings(argv)


def test_the_variant_choice_reaches_the_pipeline(client):
    fp16, _, _, _ = client.predict("a red fox", 3, False, 1, 256, 256, "fp16",
                                api_name="/text_to_image")
    int8, _, _, _ = client.predict("a red fox", 3, False, 1, 256, 256, "int8",
                                api_name="/text_to_image")
    assert Image.open(int8).size == (256, 256)
    assert not np.array_equal(pixels(fp16), pixels(int8))  # another UNet, another image
    path, _, _, _ = client.predict(handle_file(EXAMPLE), "a castle", 0.5, 2, 3, False, "int8",
                                api_name="/image_to_image")
    assert Image.open(path).size == (512, 512)


def test_an_unknown_variant_through_the_api_is_refused(client):
    with pytest.raises(AppError, match="int4"):
        client.predict("a red fox", 3, False, 1, 256, 256, "int4", api_name="/text_to_image")
    assert Image.open(text_to_image(client)[0]).size == (512, 512)


def test_only_exported_variants_are_offered(models_dir, tmp_path):
    (tmp_path / "tiny" / "fp16").mkdir(parents=True)
    (tmp_path / "tiny" / "fp16" / "model_index.json").write_text("{}")
    assert Registry(tmp_path).offered_variants("tiny") == ["fp16"]
    assert Registry(models_dir).offered_variants("tiny") == ["fp16", "int8"]


def test_comparison_returns_both_images_and_every_figure(client):
    fp16, int8, table, chart, figures = client.predict("a red fox", 1, 11, api_name="/compare")
    assert Image.open(fp16).size == Image.open(int8).size == (512, 512)
    assert not np.array_equal(pixels(fp16), pixels(int8))
    for variant in ("fp16", "int8"):
        assert {"UNet", "decoder", "total"} <= set(figures[variant]["seconds"])
        assert figures[variant]["unet_bytes"] > 0
        assert abs(figures[variant]["rss_growth_bytes"]) < 2**30  # tiny: a few MB, either sign
    assert figures["int8"]["unet_bytes"] < figures["fp16"]["unet_bytes"]
    assert figures["psnr_db"] > 0 and 0 < figures["ssim"] < 1 and figures["speedup"] > 0
    assert "INT8 is" in table and "PSNR" in table and "UNet on disk" in table
    # What each UNet is, read from its IR: the stand-in's INT8 quantizes activations too.
    assert "| UNet (read from its graph) | FP16 weights | INT8 weights and activations |" in table
    stages = {(variant, stage) for variant, stage, _ in chart["data"]}
    assert {(v, s) for v in ("FP16", "INT8") for s in ("UNet", "decoder")} <= stages


def test_comparison_of_a_bad_prompt_is_a_clear_error(client):
    with pytest.raises(AppError, match="Please enter a prompt"):
        client.predict("", 1, 11, api_name="/compare")


def test_the_fast_decoder_choice_reaches_the_pipeline(client):
    fast, _, fast_info, _ = client.predict("a red fox", 3, False, 1, 256, 256, "fp16", True,
                                        api_name="/text_to_image")
    full, _, full_info, _ = client.predict("a red fox", 3, False, 1, 256, 256, "fp16", False,
                                        api_name="/text_to_image")
    assert "decoder (Tiny TAESD stand-in)" in fast_info and "decoder (full VAE)" in full_info
    assert not np.array_equal(pixels(fast), pixels(full))
    path, _, info, _ = client.predict(handle_file(EXAMPLE), "a castle", 0.5, 2, 3, False, "fp16",
                                   False, api_name="/image_to_image")
    assert Image.open(path).size == (512, 512) and "decoder (full VAE)" in info


def test_the_gallery_adds_each_result_once():
    def result(seed, shade):  # a result as the page shows it: a PNG file carrying its seed
        image = Image.new("RGB", (64, 64), (shade, 0, 0))
        image.info["seed"] = str(seed)
        return results.png_file(image)

    gallery = results.add_to_gallery(result(1, 10), None)
    assert [caption for _, caption in gallery] == ["seed 1"]
    again = results.add_to_gallery(result(1, 10), gallery)
    assert again is not None and not isinstance(again, list)  # the same result twice: skipped
    gallery = results.add_to_gallery(result(1, 99), gallery)  # same seed, new pixels
    assert [caption for _, caption in gallery] == ["seed 1", "seed 1"]
    preview = results.png_file(Image.new("RGB", (64, 64)))  # no settings: a preview, never kept
    assert not isinstance(results.add_to_gallery(preview, gallery), list)
    gone = str(Path(preview).with_name("removed.png"))  # gradio's cache was cleaned meanwhile
    assert not isinstance(results.add_to_gallery(gone, gallery), list)


def test_a_result_returned_again_is_served_from_its_file_unchanged():
    """gradio would rewrite the file in place, and a browser still loading it would get a
    truncated image: png_file writes a result once, and its settings with it."""
    image = Image.new("RGB", (32, 32), (1, 2, 3))
    image.info["seed"] = "7"
    path = results.png_file(image)
    written = os.stat(path).st_mtime_ns
    time.sleep(0.01)
    assert results.png_file(image) == path and os.stat(path).st_mtime_ns == written
    with Image.open(path) as again:
        assert again.info["seed"] == "7" and again.getpixel((0, 0)) == (1, 2, 3)


# Every endpoint and its parameters, in order: positional gradio_client calls depend on them.
# New parameters go at the end.
API = {
    "/text_to_image": ["prompt", "seed", "randomize", "steps", "width", "height", "variant",
                       "fast_decoder", "model_id", "guidance", "negative_prompt", "images"],
    "/image_to_image": ["image", "prompt", "strength", "steps", "seed", "randomize", "variant",
                        "fast_decoder", "model_id", "guidance", "negative_prompt", "size",
                        "images"],
    "/inpaint": ["image_and_mask", "prompt", "strength", "steps", "seed", "randomize", "variant",
                 "fast_decoder", "model_id", "guidance", "negative_prompt", "size", "images"],
    "/realtime": ["enabled", "prompt", "seed", "steps", "width", "height", "variant",
                  "fast_decoder", "model_id", "guidance", "negative_prompt"],
    "/vega_text_to_image": ["prompt", "negative_prompt", "steps", "guidance", "width", "height",
                            "seed", "randomize", "variant", "fast_decoder", "images"],
    "/vega_image_to_image": ["image", "prompt", "negative_prompt", "strength", "steps",
                             "guidance", "size", "seed", "randomize", "variant", "fast_decoder",
                             "images"],
    "/compare": ["prompt", "steps", "seed"],
    "/stop": [], "/stop_image_to_image": [], "/stop_inpaint": [], "/vega_stop": [],
    "/vega_stop_image_to_image": [],
}


def test_the_api_keeps_its_endpoints_and_parameter_order(app_url):
    # all_endpoints: the Stop buttons are callable but left out of the API page (and so of the
    # MCP tools).
    info = httpx.get(f"{app_url}gradio_api/info?all_endpoints=true", timeout=30).json()
    assert {name: [p["parameter_name"] for p in endpoint["parameters"]]
            for name, endpoint in info["named_endpoints"].items()
            if not name.startswith("/load_example")} == API  # gradio's own, for gr.Examples


def test_image_to_image_in_the_main_tab_takes_a_size(client):
    path, _, _, _ = client.predict(handle_file(EXAMPLE), "a castle", 0.5, 2, 3, False, "fp16", True,
                                "tiny", 0.0, "", 384, api_name="/image_to_image")
    assert Image.open(path).size == (384, 384)


def test_a_batch_returns_every_image_each_made_again_by_its_seed(client):
    def call(seed, images):
        return client.predict("a red fox", seed, False, 2, 256, 256, "fp16", True, "tiny", 0.0,
                              "", images, api_name="/text_to_image")

    path, seed, info, batch = call(11, 3)
    assert seed == 11 and "3 of 3 images" in info
    assert [item["caption"] for item in batch] == ["seed 11", "seed 12", "seed 13"]
    assert np.array_equal(pixels(path), pixels(batch[2]["image"]))  # the last one shown
    alone, _, _, single = call(12, 1)  # a gallery of one: hidden on the page, there for the API
    assert np.array_equal(pixels(batch[1]["image"]), pixels(alone))
    assert [item["caption"] for item in single] == ["seed 12"]


def test_an_image_to_image_batch_returns_every_image(client):
    _, seed, _, batch = client.predict(handle_file(EXAMPLE), "a castle", 0.5, 2, 7, False, "fp16",
                                       True, "tiny", 0.0, "", 256, 2, api_name="/image_to_image")
    assert [item["caption"] for item in batch] == ["seed 7", "seed 8"]
    assert all(Image.open(item["image"]).size == (256, 256) for item in batch)


def test_a_batch_of_five_is_a_clear_error(client):
    with pytest.raises(AppError, match="Images must be between 1 and 4"):
        client.predict("a red fox", 1, False, 1, 256, 256, "fp16", True, "tiny", 0.0, "", 5,
                       api_name="/text_to_image")


def call_raw(app_url: str, client, api_name: str, data: list) -> str:
    """An API call as a hand-written client makes it (gradio's REST API, no gradio_client to
    upload files first), the parameters after `data` at their defaults: the text of its
    answer's last event."""
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"][
        f"/{api_name}"]["parameters"]
    data = data + [p["parameter_default"] for p in parameters[len(data):]]
    event = httpx.post(f"{app_url}gradio_api/call/{api_name}", json={"data": data},
                       timeout=30).json()["event_id"]
    answer = httpx.get(f"{app_url}gradio_api/call/{api_name}/{event}", timeout=120).text
    return answer.strip().rsplit("\n", 1)[-1]


@pytest.mark.parametrize("path, why", [
    (str(EXAMPLE), "not uploaded by a user"), ("/etc/hostname", "not uploaded by a user"),
    ("/tmp/../etc/hostname", "not uploaded by a user"),
    ("http://127.0.0.1:9/x.png", "failed validation")])  # no fetching of the server's network
def test_a_server_file_sent_as_file_data_is_refused_with_a_reason(app_url, client, path, why):
    # A file of the server's, its own example among them, or a URL on its network: gradio
    # refuses it before any handler runs, and says so (it answered a bare "Error").
    file = {"path": path, "meta": {"_type": "gradio.FileData"}}
    answer = call_raw(app_url, client, "image_to_image", [file, "a castle", 0.5, 2, 3, False])
    assert answer.startswith("data:") and why in json.loads(answer[5:])["error"]
    assert Image.open(image_to_image(client)[0]).size == (512, 512)  # and the server goes on


def test_the_upload_components_read_only_files_gradio_stored(tmp_path):
    # The image and mask components read the file themselves: whatever gradio let through,
    # only a file in its upload folder is read.
    import gradio as gr
    import gradio.utils
    from gradio.data_classes import FileData, ImageData

    from ui.widgets import UploadImage, mask_editor

    outside = ImageData(path=str(EXAMPLE))
    stored = Path(gradio.utils.get_upload_folder()) / "test-upload" / "a.png"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(Path(EXAMPLE).read_bytes())
    assert UploadImage(type="filepath").preprocess(ImageData(path=str(stored))) == str(stored)
    with pytest.raises(gr.Error, match="Only files uploaded to this app are read"):
        UploadImage(type="filepath").preprocess(outside)
    editor = mask_editor()
    value = editor.data_model(background=FileData(path=str(stored)),
                              layers=[FileData(path=str(EXAMPLE))], composite=None)
    with pytest.raises(gr.Error, match="Only files uploaded to this app are read"):
        editor.preprocess(value)
