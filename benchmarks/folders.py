"""The exported folders every benchmark configuration runs on, made once and cached.

Quick (`--quick`): the tiny stand-in, exported through the app's own exporter (seconds).
Full: the full-size SDXL-Turbo stand-in (benchmarks.full_size), TAESD-XL of the real architecture
(FP16, and INT8 calibrated on the stand-in's latents), the NNCF INT8 UNet (`python -m export
sdxl-turbo --variant int8`), an INT8 weight-compressed UNet (the way FastSD CPU ships it) and the
diffusers source for the PyTorch peer: each only where a chosen configuration needs it
(`plan`), and only once (`python -m benchmarks.standins` builds them ahead of a run).
Peers that take one folder (optimum-intel, openvino.genai) read "views": folders of links that
swap in another UNet or TAESD for both VAE halves. Heavy steps run in child processes."""

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from benchmarks.full_size import build_full_size, default_cache
from pipelines.layout import VAE_HALVES, link_view


@dataclass(frozen=True)
class Folders:
    model_id: str  # the catalogue id the app serves them as: "tiny" or "sdxl-turbo"
    autoencoder_id: str  # "tiny-taesd" or "taesdxl"
    models_dir: Path  # laid out as the app's models folder
    torch_source: Path  # the diffusers folder, for the PyTorch peer

    @property
    def root(self) -> Path:
        return self.models_dir / self.model_id

    def variant(self, name: str) -> Path:
        """fp16 | int8 | int8-weights: the folder, or a view with TAESD (name + "+taesd")."""
        base, _, extra = name.partition("+")
        folder = self.root / base
        if extra == "taesd":
            folder = _view(self.root / f".view-{base}-taesd", folder,
                           {half: self.models_dir / self.autoencoder_id / half
                            for half in VAE_HALVES})
        return folder

    def has(self, name: str) -> bool:
        base, _, extra = name.partition("+")
        taesd = self.models_dir / self.autoencoder_id
        return (self.root / base / "model_index.json").is_file() and (
            extra != "taesd" or all((taesd / half / "openvino_model.xml").is_file()
                                    for half in VAE_HALVES))


def existing(quick: bool) -> Folders:
    """Where the folders are (or will be); builds nothing."""
    if quick:
        models_dir = Path(os.environ.get("TURBO_BENCH_QUICK_DIR", default_cache() / "quick"))
        return Folders("tiny", "tiny-taesd", models_dir, models_dir / "tiny" / "torch-source")
    models_dir = default_cache()
    return Folders("sdxl-turbo", "taesdxl", models_dir,
                   models_dir / "sdxl-turbo" / "torch-source")


# Calibration samples of the full-size INT8 parts: the statistics set the INT8 ranges, not the
# graph's cost, and the stand-ins' weights are random anyway (images are noise), so a few
# samples time the same as hundreds (see benchmarks.int8_unet).
FULL_SIZE_SAMPLES = {"int8": 2, "taesd-int8": 4}
TINY_SAMPLES = 4


@dataclass(frozen=True)
class Step:
    """One stand-in folder to build: `done` says whether it is there already."""
    key: str  # what a configuration needs: fp16, taesd, taesd-int8, int8, int8-weights, torch
    name: str
    done: Callable[[], bool]
    build: Callable[[], object]


def plan(folders: Folders, needs: set[str], quick: bool) -> list[Step]:
    """The steps that make what `needs` asks for, in an order where each step finds what it
    builds on: the FP16 model first (INT8 quantizes it, the views link it, the INT8 TAESD
    calibrates on its latents), the FP16 TAESD before the INT8 one."""
    from pipelines.registry import Registry

    registry = Registry(folders.models_dir, cache=False)
    model, taesd = folders.model_id, folders.autoencoder_id
    wanted = needs | {"fp16"} | ({"taesd"} if "taesd-int8" in needs else set())
    build = (_tiny_builds if quick else _full_size_builds)(folders)
    steps = (
        Step("fp16", f"{model} FP16", lambda: folders.has("fp16"), build["fp16"]),
        Step("taesd", f"{taesd} FP16", lambda: registry.has_autoencoder(taesd), build["taesd"]),
        Step("taesd-int8", f"{taesd} INT8", lambda: registry.has_autoencoder(taesd, "int8"),
             build["taesd-int8"]),
        Step("int8", f"{model} INT8 UNet", lambda: folders.has("int8"), build["int8"]),
        Step("int8-weights", f"{model} INT8 weights", lambda: folders.has("int8-weights"),
             lambda: _weight_compressed(folders)),
        Step("torch", f"{model} diffusers source (PyTorch)", folders.torch_source.is_dir,
             build["torch"]),
    )
    return [step for step in steps if step.key in wanted]


def prepare(quick: bool, needs: set[str]) -> Folders:
    """What the chosen configurations need ("fp16", "int8", "int8-weights", "taesd",
    "taesd-int8", "torch"), built where missing."""
    folders = existing(quick)
    run(plan(folders, needs, quick))
    return folders


def run(steps: list[Step]) -> None:
    """Build each step not done yet, in order, saying which."""
    for step in steps:
        if step.done():
            print(f"[standins] {step.name}: already built", flush=True)
            continue
        start = time.perf_counter()
        print(f"[standins] {step.name}: building…", flush=True)
        step.build()
        print(f"[standins] {step.name}: took {time.perf_counter() - start:.0f} s", flush=True)


def _full_size_builds(folders: Folders) -> dict[str, Callable[[], object]]:
    """Each runs in child processes: a full-size torch model never shares memory with
    OpenVINO's copy of another."""
    models_dir = str(folders.models_dir)
    return {
        "fp16": lambda: build_full_size(folders.model_id, folders.models_dir),
        "taesd": lambda: _run_child("_taesd", models_dir),
        "taesd-int8": lambda: _run_child("_taesd_int8", models_dir),
        # The export CLI, as users run it (its --split default fits this machine's RAM).
        "int8": lambda: subprocess.run(
            [sys.executable, "-m", "export", folders.model_id, "--variant", "int8",
             "--models-dir", models_dir, "--samples", str(FULL_SIZE_SAMPLES["int8"])],
            check=True),
        "torch": lambda: _run_child("_torch_source", str(folders.torch_source)),
    }


def _tiny_builds(folders: Folders) -> dict[str, Callable[[], object]]:
    from export import export_autoencoder, export_model, tiny

    models_dir = folders.models_dir
    return {
        "fp16": lambda: export_model(folders.model_id, "fp16", models_dir),
        "taesd": lambda: export_autoencoder(folders.autoencoder_id, models_dir),
        "taesd-int8": lambda: export_autoencoder(folders.autoencoder_id, models_dir,
                                                 variant="int8", samples=TINY_SAMPLES),
        "int8": lambda: export_model(folders.model_id, "int8", models_dir,
                                     samples=TINY_SAMPLES),
        "torch": lambda: shutil.move(tiny.save_source(models_dir / ".tiny-work"),
                                     folders.torch_source),
    }


def _weight_compressed(folders: Folders) -> None:
    """fp16's folder with an INT8 weight-compressed UNet (nncf.compress_weights, data-free), the
    way FastSD CPU's INT8 models are made: the UNet only, as (b) runs it."""
    out = folders.root / "int8-weights"
    if (out / "model_index.json").is_file():
        return
    fp16 = folders.root / "fp16"
    staged = out.with_name(out.name + ".tmp")  # renamed once complete: a stopped build
    shutil.rmtree(staged, ignore_errors=True)  # never leaves a folder that looks done
    unet = staged / "unet"
    unet.mkdir(parents=True)
    _run_child("_compress", str(fp16 / "unet" / "openvino_model.xml"),
               str(unet / "openvino_model.xml"))
    shutil.copy2(fp16 / "unet" / "config.json", unet / "config.json")
    link_view(staged, fp16, skip=("unet", "manifest.json"))
    staged.rename(out)


def _view(view: Path, folder: Path, replace: dict[str, Path]) -> Path:
    """A folder of links to `folder`'s entries, with some entries replaced."""
    if view.is_dir():
        return view
    staged = view.with_name(view.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    link_view(staged, folder, replace).rename(view)
    return view


def _run_child(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "benchmarks.folders", *args], check=True)


def _child(argv: list[str]) -> None:
    if argv[0] == "_taesd":
        from benchmarks.fast_decoder import full_size_taesd
        full_size_taesd(Path(argv[1]))
    elif argv[0] == "_taesd_int8":  # calibrated on the full-size FP16 stand-in's latents
        from export import export_autoencoder
        export_autoencoder("taesdxl", Path(argv[1]), variant="int8",
                           samples=FULL_SIZE_SAMPLES["taesd-int8"])
    elif argv[0] == "_torch_source":
        from benchmarks.full_size import save_source
        save_source(Path(argv[1]))
    elif argv[0] == "_compress":
        from benchmarks.int8_unet import compress_weights
        compress_weights(argv[1], argv[2])


if __name__ == "__main__":
    _child(sys.argv[1:])
