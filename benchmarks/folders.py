"""The exported folders every benchmark configuration runs on, made once and cached.

Quick (`--quick`): the tiny stand-in, exported through the app's own exporter (seconds).
Full: the full-size SDXL-Turbo stand-in (benchmarks.standins), TAESD-XL of the real architecture,
an INT8 weight-compressed UNet (the way FastSD CPU ships it) and, where it has been exported
(`python -m export sdxl-turbo --variant int8 --models-dir <stand-ins>`), the NNCF INT8 UNet.
Peers that take one folder (optimum-intel, openvino.genai) read "views": folders of links that
swap in another UNet or TAESD for both VAE halves. Heavy steps run in child processes."""

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.standins import build_full_size, default_cache
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


def prepare(quick: bool, needs: set[str]) -> Folders:
    """What the chosen configurations need ("fp16", "int8", "int8-weights", "taesd", "torch"),
    built where missing. Full INT8 of the full-size UNet is not built here: see README."""
    folders = existing(quick)
    if quick:
        _export_tiny(folders, needs)
    else:
        build_full_size("sdxl-turbo", folders.models_dir)
        if "taesd" in needs:
            _run_child("_taesd", str(folders.models_dir))
    if "torch" in needs and not folders.torch_source.is_dir():
        if quick:
            from export import tiny
            shutil.move(tiny.save_source(folders.models_dir / ".tiny-work"), folders.torch_source)
        else:
            _run_child("_torch_source", str(folders.torch_source))
    if "int8-weights" in needs:
        _weight_compressed(folders)
    return folders


def _export_tiny(folders: Folders, needs: set[str]) -> None:
    from export import export_autoencoder, export_model
    from pipelines.registry import Registry

    registry = Registry(folders.models_dir)
    for variant, options in (("fp16", {}), ("int8", {"samples": 4})):
        if (variant == "fp16" or variant in needs) and not registry.is_exported("tiny", variant):
            export_model("tiny", variant, folders.models_dir, **options)
    if "taesd" in needs and not registry.has_autoencoder("tiny-taesd"):
        export_autoencoder("tiny-taesd", folders.models_dir)


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
    elif argv[0] == "_torch_source":
        from benchmarks.standins import save_source
        save_source(Path(argv[1]))
    elif argv[0] == "_compress":
        from benchmarks.int8_unet import compress_weights
        compress_weights(argv[1], argv[2])


if __name__ == "__main__":
    _child(sys.argv[1:])
