"""An exported model folder's layout (optimum-intel's): its parts, and link views of it. No
OpenVINO or torch import here, so that benchmarks and export can use it cheaply."""

from pathlib import Path
from collections.abc import Mapping

# The two halves a Tiny Autoencoder replaces together (its latents are unscaled).
VAE_HALVES = ("vae_decoder", "vae_encoder")


def link_view(view: Path, folder: Path, replace: Mapping[str, Path] | None = None,
              skip: tuple[str, ...] = ()) -> Path:
    """Fill the folder `view` with links to `folder`'s entries, some replaced by other paths
    (e.g. a TAESD's halves) and some left out: a folder that optimum-intel or openvino.genai
    reads as the model with other parts, without copying gigabytes. Each part's config.json
    comes with its replacement (TAESD's scaling_factor differs)."""
    replace = replace or {}
    view.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.name not in skip:
            (view / entry.name).symlink_to(Path(replace.get(entry.name, entry)).resolve())
    return view
