"""Serving options of the compiled models on the tiny stand-in: the inference precision hint, the
compiled-model store, and static shapes that follow the request's size."""

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from PIL import Image

from pipelines import compiled_store, generate, settings
from pipelines.compiled import CompiledParts, InvalidSetting, Shape
from pipelines.registry import Registry
from pipelines.requests import Image2Image, Inpaint, Text2Image, validate

CPU_HAS_BF16 = "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def picture(loaded, width=256, height=256, seed=3, **fields) -> np.ndarray:
    request = Text2Image(prompt="a lighthouse", model_id="tiny", seed=seed, width=width,
                         height=height, **fields)
    return np.asarray(generate.run(loaded, validate(request)).image)


@pytest.mark.parametrize("precision", [
    "f32", pytest.param("bf16", marks=pytest.mark.skipif(not CPU_HAS_BF16, reason="no BF16"))])
def test_forced_precision_is_what_every_compiled_part_runs_in(models_dir, precision):
    # openvino.genai keeps its compiled models to itself: the precision is read back from a
    # probe compiled with the same config as every part.
    loaded = Registry(models_dir, precision=precision).get("tiny", "fp16")
    assert loaded.precision == precision


@pytest.mark.skipif(not CPU_HAS_BF16, reason="needs a CPU with BF16 to compare with f32")
def test_precision_changes_the_arithmetic(models_dir):
    f32 = Registry(models_dir, precision="f32").get("tiny", "fp16")
    bf16 = Registry(models_dir, precision="bf16").get("tiny", "fp16")
    assert not np.array_equal(picture(f32), picture(bf16))


def test_auto_precision_is_what_openvino_picks_on_this_cpu(models_dir):
    loaded = Registry(models_dir, precision="auto").get("tiny", "fp16")
    own_default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    assert loaded.precision == own_default == ("bf16" if CPU_HAS_BF16 else "f32")


def test_invalid_precision_is_a_clear_error(models_dir, monkeypatch):
    with pytest.raises(InvalidSetting, match="one of auto, bf16, f16, f32 .* not 'fp8'"):
        Registry(models_dir, precision="fp8")
    monkeypatch.setenv("TURBO_PRECISION", "int4")
    with pytest.raises(InvalidSetting, match="TURBO_PRECISION"):
        Registry.from_settings(settings.from_flags({"models_dir": models_dir},
                                                   names=settings.SERVING))
    with pytest.raises(SystemExit):
        parse_args(["--precision", "fp8"])
    assert parse_args(["--precision", "f32"]).precision == "f32"


def parse_args(argv: list[str]) -> settings.Settings:
    """The serving settings as a command line with the serving flags parses them."""
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, settings.SERVING)
    return settings.parse(parser, argv)[1]


def test_parts_are_saved_after_the_first_image_and_imported_at_the_next_load(fresh_models):
    store = fresh_models / ".ov-cache"
    first = Registry(fresh_models).get("tiny", "fp16")
    assert first.from_cache is False
    assert not compiled_store.saved(store)  # nothing written on the way to the first image
    assert set(first.parts.compiled) == {"unet", "text_encoder", "text_encoder_2", "fast/vae"}
    images = {True: picture(first)}
    for seed in (4, 5):  # more requests at once: none waits for a save, none runs beside one
        picture(first, seed=seed)
    assert not compiled_store.saved(store)  # saved only once no generation ran for 2 s
    first.parts.wait_saved()
    # One folder per part compiled at load: UNet, two text encoders, TAESD (both halves).
    assert len(compiled_store.saved(store)) == 4
    images[False] = picture(first, fast_decoder=False)  # the full VAE compiles now, saved next
    first.parts.wait_saved()
    saved = compiled_store.saved(store)
    assert len(saved) == 5

    again = Registry(fresh_models).get("tiny", "fp16")
    assert again.from_cache is True and again.parts.imported == set(again.parts.compiled)
    for fast_decoder in (True, False):
        assert np.array_equal(images[fast_decoder], picture(again, fast_decoder=fast_decoder))
    again.parts.wait_saved()
    assert compiled_store.saved(store) == saved  # nothing new or rewritten


def test_a_damaged_saved_part_is_compiled_and_saved_again(fresh_models):
    store = fresh_models / ".ov-cache"
    first = Registry(fresh_models).get("tiny", "fp16")
    image = picture(first)
    first.parts.wait_saved()
    [unet] = [folder for folder in store.iterdir() if folder.name.startswith("unet-")]
    (unet / "openvino_model.blob").write_bytes(b"not a compiled model")
    again = Registry(fresh_models).get("tiny", "fp16")
    assert again.from_cache is False and "unet" not in again.parts.imported
    assert np.array_equal(image, picture(again))
    again.parts.wait_saved()
    assert (unet / "openvino_model.blob").stat().st_size > 1000  # saved afresh


def test_a_re_exported_model_gets_new_parts_and_its_old_ones_are_removed(fresh_models):
    store = fresh_models / ".ov-cache"
    store.mkdir()
    (store / "4702185210874162504.blob").write_bytes(b"what OpenVINO's CACHE_DIR left here")
    first = Registry(fresh_models).get("tiny", "fp16")
    picture(first)
    first.parts.wait_saved()
    before = compiled_store.saved(store)
    assert not list(store.glob("*.blob"))
    unet_ir = fresh_models / "tiny" / "fp16" / "unet" / "openvino_model.xml"
    unet_ir.touch()  # what a re-export does to the part's files, whatever else it changes
    again = Registry(fresh_models).get("tiny", "fp16")
    assert "unet" not in again.parts.imported and "text_encoder" in again.parts.imported
    picture(again)
    again.parts.wait_saved()
    after = compiled_store.saved(store)
    [old] = set(before) - set(after)
    [new] = set(after) - set(before)
    assert old.startswith("unet-") and new.startswith("unet-")


def test_the_full_vae_compiles_only_when_a_request_asks_for_it(fresh_models, tmp_path_factory):
    loaded = Registry(fresh_models).get("tiny", "fp16")
    assert set(loaded.parts.compiled) == {"unet", "text_encoder", "text_encoder_2", "fast/vae"}
    full = picture(loaded, fast_decoder=False)
    assert "vae" in loaded.parts.compiled
    source = Image.new("RGB", (256, 256), "teal")
    result = generate.run(loaded, validate(Image2Image(prompt="a castle", model_id="tiny",
                                                       image=source, seed=1, width=256,
                                                       height=256, fast_decoder=False)))
    assert result.image.size == (256, 256)

    # The same pixels as where the full VAE is the only decoder, compiled when loaded.
    alone = tmp_path_factory.mktemp("alone")
    shutil.copytree(fresh_models / "tiny" / "fp16", alone / "tiny" / "fp16")
    alone = Registry(alone).get("tiny", "fp16")
    assert "vae" in alone.parts.compiled
    assert np.array_equal(full, picture(alone))


def test_parts_compile_at_once_each_on_a_thread_of_its_own(fresh_models, monkeypatch):
    # The UNet's compile keeps barely more than one core busy: the other parts compile beside
    # it (CompiledParts._compile_parts). Imports from the store stay one after another.
    threads = {}
    compile_one = CompiledParts._compile_one

    def recorded(self, part, component, start):
        threads[part.key] = threading.current_thread().name
        return compile_one(self, part, component, start)

    monkeypatch.setattr(CompiledParts, "_compile_one", recorded)
    first = Registry(fresh_models).get("tiny", "fp16")
    assert set(threads) == {"unet", "text_encoder", "text_encoder_2", "fast/vae"}
    assert len(set(threads.values())) == 4
    assert all(name.startswith("turbo-compile") for name in threads.values())
    image = picture(first)
    first.parts.wait_saved()

    threads.clear()
    again = Registry(fresh_models).get("tiny", "fp16")
    assert not threads and again.parts.imported == set(again.parts.compiled)
    assert np.array_equal(image, picture(again))


def test_the_cache_can_be_turned_off(fresh_models, monkeypatch):
    monkeypatch.setenv("TURBO_OV_CACHE", "0")
    chosen = settings.from_flags({"models_dir": fresh_models}, names=settings.SERVING)
    loaded = Registry.from_settings(chosen).get("tiny", "fp16")
    picture(loaded)
    loaded.parts.wait_saved()
    assert loaded.from_cache is None and not (fresh_models / ".ov-cache").exists()


def test_static_shapes_follow_the_request_size_recompiling_only_on_change(fresh_models):
    # f32 on both sides: the comparison with dynamic shapes is then exact up to summation order.
    static = Registry(fresh_models, precision="f32", static_shapes=True).get("tiny", "fp16")
    dynamic = Registry(fresh_models, precision="f32").get("tiny", "fp16")
    assert static.parts.recompiles == 0  # compiled at the default size, 512², when loaded
    assert static.parts.shape == Shape(1, 512, 512)  # guidance 0: a batch of 1, not 2

    sizes = [(512, 512), (384, 256), (384, 256), (384, 256)]
    recompiles = []
    for (width, height), fast_decoder in zip(sizes, (True, True, False, True)):
        image = picture(static, width, height, fast_decoder=fast_decoder)
        assert image.shape == (height, width, 3)
        recompiles.append(static.parts.recompiles)
        expected = picture(dynamic, width, height, fast_decoder=fast_decoder)
        # Static and dynamic shapes pick different CPU kernels, which sum in another order:
        # a pixel may round one level apart, no more.
        assert np.abs(image.astype(int) - expected).max() <= 1
        assert (image != expected).mean() < 1e-3
    assert recompiles == [0, 1, 1, 1]
    static.parts.wait_saved()
    dynamic.parts.wait_saved()
    saved = compiled_store.saved(fresh_models / ".ov-cache")
    # The static UNet of 384 × 256 and the dynamic one of `dynamic`. The 512² one was replaced
    # before the model was ever idle for 2 s: it was not saved. The text encoders, never
    # reshaped, are one part whatever the size.
    assert len([name for name in saved if name.startswith("unet-")]) == 2
    assert len([name for name in saved if name.startswith("text_encoder-")]) == 1

    source = Image.new("RGB", (600, 500), "orange")
    result = generate.run(static, validate(Image2Image(prompt="a castle", model_id="tiny",
                                                       image=source, seed=1)))
    assert result.image.size == (512, 512) and static.parts.recompiles == 2
    assert "recompile for this size" in result.timings

    # Inpainting on the same static parts: its pipeline follows the recompile to another size.
    source = Image.effect_noise((600, 500), 64).convert("RGB")
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (250, 150, 350, 350))
    request = validate(Inpaint(prompt="a door", model_id="tiny", image=source, mask=mask, seed=1,
                               width=384, height=384, strength=1.0))
    inpainted = generate.run(static, request).image
    assert inpainted.size == (384, 384) and static.parts.recompiles == 3
    kept = np.asarray(request.mask) == 0
    assert np.array_equal(np.asarray(inpainted)[kept], np.asarray(request.image)[kept])
    assert (np.asarray(inpainted)[~kept] != np.asarray(request.image)[~kept]).any()

    # Another start imports a saved shape when asked for it: the same pixels as where it was
    # compiled.
    static.parts.wait_saved()
    again = Registry(fresh_models, precision="f32", static_shapes=True).get("tiny", "fp16")
    assert "unet" not in again.parts.imported  # 512², never saved
    assert np.array_equal(picture(again, 384, 384), picture(static, 384, 384))
    assert again.parts.recompiles == 1 and "unet" in again.parts.imported


def test_a_kept_prompt_follows_a_static_recompile(fresh_models):
    # The kept encodings' pipelines hold the UNet compiled for the old size: a recompile drops
    # them, and the next frame of the stream is made on the new UNet.
    static = Registry(fresh_models, precision="f32", static_shapes=True).get("tiny", "fp16")
    frames = [generate.run(static, validate(Text2Image(
        prompt="a castle", model_id="tiny", seed=1, width=width, height=256, reuse_prompt=True)))
        for width in (256, 384)]
    assert static.parts.recompiles == 2
    alone = generate.run(static, validate(Text2Image(prompt="a castle", model_id="tiny", seed=1,
                                                      width=384, height=256)))
    assert frames[1].image.size == (384, 256)
    assert np.array_equal(np.asarray(frames[1].image), np.asarray(alone.image))


def test_a_failed_save_leaves_nothing_behind_and_is_told(fresh_models, caplog):
    # An export that fails midway (a full disk): its partial folder is removed, the failure is
    # logged, and the part is compiled again at the next start.
    loaded = Registry(fresh_models).get("tiny", "fp16")

    class FullDisk:
        def export_model(self, path):
            (Path(path) / "openvino_model.blob").parent.mkdir(parents=True)
            (Path(path) / "openvino_model.blob").write_bytes(b"half a blob")
            raise RuntimeError("No space left on device")

    loaded.parts.compiled["unet"], real = FullDisk(), loaded.parts.compiled["unet"]
    loaded.parts.save_later(loaded.lock)
    loaded.parts.wait_saved()
    loaded.parts.compiled["unet"] = real
    store = fresh_models / ".ov-cache"
    assert not [path for path in store.iterdir() if path.name.startswith("unet-")]
    assert "Could not save the compiled unet" in caplog.text
    assert len(compiled_store.saved(store)) == 3  # the other parts were saved
    assert "No space left on device" in caplog.text  # the export's own error, told back


class ExportHere:
    """A compiled part whose export writes the exporting process's id, then takes `seconds`."""

    def __init__(self, seconds: float = 0.0):
        self.seconds = seconds

    def export_model(self, path):
        Path(path).mkdir(parents=True)
        (Path(path) / "openvino_model.blob").write_text(str(os.getpid()))
        time.sleep(self.seconds)


@pytest.mark.skipif(sys.platform != "linux", reason="exported in this process elsewhere")
def test_a_part_is_exported_by_a_child_process_and_this_one_runs_on(tmp_path):
    # openvino.genai's export_model holds the GIL for the whole export (the full-size UNet:
    # 5.5 s, during which the app answered nothing): a forked child exports instead.
    folder = tmp_path / "store" / "unet-a-b"
    compiled_store.save(ExportHere(), folder)
    assert int((folder / "openvino_model.blob").read_text()) not in (os.getpid(), 0)
    assert compiled_store.saved(tmp_path / "store") == {folder.name: folder.stat().st_mtime_ns}


@pytest.mark.skipif(sys.platform != "linux", reason="exported in this process elsewhere")
def test_an_export_that_does_not_end_is_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled_store, "EXPORT_TIMEOUT", 1)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="took more than 1 s"):
        compiled_store.save(ExportHere(seconds=60), tmp_path / "store" / "unet-a-b")
    assert time.monotonic() - start < 10
    assert not list((tmp_path / "store").iterdir())  # no partial folder left


@pytest.mark.skipif(sys.platform != "linux", reason="exported in this process elsewhere")
def test_generations_go_on_while_a_part_is_saved(fresh_models):
    """A save that takes long (a hung child, a slow disk) never holds the run lock: a
    generation that comes meanwhile runs at once, the save is given up (nothing half-written
    left), and the part is saved at the next idle time."""
    loaded = Registry(fresh_models).get("tiny", "fp16")
    picture(loaded)
    loaded.parts.wait_saved()  # the real parts are saved: only the slow one is left
    store = fresh_models / ".ov-cache"
    folder = store / "slow-a-b"
    loaded.parts.compiled["slow"] = ExportHere(seconds=60)
    loaded.parts.saver.unsaved["slow"] = folder
    loaded.parts.save_later(loaded.lock)
    deadline = time.monotonic() + 30
    while not list(store.glob("slow-a-b.partial-*")):  # the saving child is at work
        assert time.monotonic() < deadline, "the save did not start"
        time.sleep(0.05)
    start = time.monotonic()
    picture(loaded, seed=8)
    assert time.monotonic() - start < 20  # not after the 60 s export
    deadline = time.monotonic() + 30
    while list(store.glob("slow-a-b*")):  # given up: the child stopped, its folder removed
        assert time.monotonic() < deadline, "the save was not given up"
        time.sleep(0.05)
    loaded.parts.compiled["slow"] = ExportHere()  # quick now: saved at the next idle time
    loaded.parts.wait_saved()
    assert folder.is_dir() and "slow" not in loaded.parts.saver.unsaved


def test_a_failed_static_recompile_says_why_and_the_next_request_works(fresh_models,
                                                                       monkeypatch):
    """The recompile for a new size fails (out of memory at 1024², say): the request gets a
    message, and later requests, at the old size or the failed one, compile and run."""
    from pipelines.errors import RecompileFailed

    static = Registry(fresh_models, static_shapes=True).get("tiny", "fp16")
    picture(static, 512, 512)
    real = static.parts._compile_parts
    failing = [True]

    def compile_or_fail(parts):
        if failing.pop() if failing else False:
            raise RuntimeError("std::bad_alloc")
        return real(parts)

    monkeypatch.setattr(static.parts, "_compile_parts", compile_or_fail)
    with pytest.raises(RecompileFailed, match=r"384×256 \(RuntimeError: std::bad_alloc\)"):
        picture(static, 384, 256)
    assert picture(static, 512, 512).shape == (512, 512, 3)
    assert picture(static, 384, 256).shape == (256, 384, 3)
