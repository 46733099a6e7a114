"""The user's own models: `python -m export add NAME --from SOURCE ...` exports a diffusers
folder, a Hub repo or a single-file .safetensors checkpoint, with LoRAs fused at their scales,
into <models dir>/NAME/ and then enters it in <models dir>/catalogue.json; `remove NAME` undoes
that. Only .safetensors is read (never pickle); every input is checked before any export work;
the catalogue entry is written last, so a failed add never shows up as a model."""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines import catalogue, user_models
from pipelines.errors import InvalidRequest, summary
from pipelines.registry import Registry

PICKLE = (".ckpt", ".bin", ".pt", ".pth", ".pkl")


@dataclass(frozen=True)
class Lora:
    source: str  # a .safetensors file, a folder holding one, or a Hub repo
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "Lora":
        """FILE_OR_REPO[:SCALE]."""
        source, _, scale = text.rpartition(":")
        try:
            return cls(source, float(scale)) if source else cls(text)
        except ValueError:
            return cls(text)


def add(name: str, source: str, models_dir: Path | None = None, *, base: str = "sdxl-turbo",
        loras: tuple[Lora, ...] = (), variant: str = "fp16", config: str | None = None,
        steps: int | None = None, guidance: float | None = None,
        size: int | None = None) -> Path:
    """Export SOURCE with `loras` fused as the user model `name` on `base`'s settings (steps,
    guidance, size overridden where given); returns its folder. `config`: a diffusers folder
    (or Hub repo) of the base's architecture that a single-file checkpoint is read with."""
    registry = Registry(models_dir, cache=False)
    entry = _entry(registry, name, source, base, loras, variant,
                   dict(steps=steps, guidance=guidance, size=size))
    spec = _checked(name, entry)
    kind = _source_kind(source)
    config = config or catalogue.MODELS[base].source
    if kind == "single-file" and config != catalogue.MODELS[base].source:
        entry["config"] = config  # for the add line that makes it again (user_models.add_command)
    for repo in _hub_inputs(source, kind, loras, config):
        from export.convert import check_hub

        check_hub(repo, registry.folder(name, "fp16"))
    folder = registry.models_dir / name
    try:
        _export(registry, spec, kind, config, loras)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # the entry is not written: nothing to serve
        raise
    failed = _optional_variant(registry, spec, variant)
    _write_entries(registry.catalogue, {**registry.catalogue.entries(), name: entry})
    if failed is not None:
        raise VariantFailed(
            f"{name} is added and served in FP16 ({folder / 'fp16'}); its {variant} step "
            f"failed: {summary(failed)}. Try it again with "
            f"`{catalogue.export_command(name, variant)}`.") from failed
    return folder


class VariantFailed(InvalidRequest):
    """The FP16 export is kept and served; the optional variant after it failed."""


def _optional_variant(registry: Registry, spec: catalogue.ModelSpec,
                      variant: str) -> Exception | None:
    """Export the variant asked for beside the finished FP16 export; what went wrong, if
    anything (the FP16 export is the user's work of many minutes: never lost to it)."""
    if variant == "fp16":
        return None
    from export import export_model

    try:
        export_model(spec.id, variant, registry.models_dir, spec=spec)
    except Exception as e:  # noqa: BLE001 -- reported; a KeyboardInterrupt still ends it all
        return e
    return None


def remove(name: str, models_dir: Path | None = None) -> Path:
    """Delete a user model's entry, then its folder; built-in models are refused."""
    registry = Registry(models_dir, cache=False)
    if name in catalogue.MODELS or name in user_models.RESERVED:
        raise InvalidRequest(f"{name} is built in; only your own models can be removed.")
    _refuse_broken(registry.catalogue)
    entries = registry.catalogue.entries()
    if name not in entries:
        raise InvalidRequest(f"There is no model of yours named {name!r} in "
                             f"{registry.catalogue.file}; yours: "
                             f"{', '.join(entries) or 'none'}.")
    _checked_name(name)  # a hand-edited entry must not name a path outside the models folder
    _write_entries(registry.catalogue, {k: v for k, v in entries.items() if k != name})
    folder = registry.models_dir / name
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _entry(registry: Registry, name, source, base, loras, variant, overrides) -> dict:
    _refuse_broken(registry.catalogue)
    _checked_name(name)
    if name in registry.catalogue:
        raise InvalidRequest(f"You already have a model named {name}; remove it first "
                             f"(`python -m export remove {name}`) or choose another name.")
    if (registry.models_dir / name).exists():
        raise InvalidRequest(f"{registry.models_dir / name} exists but is no model of yours; "
                             f"move it away or choose another name.")
    if base not in user_models.BASES:
        raise InvalidRequest(f"Unknown base {base!r}; choose one of "
                             f"{', '.join(user_models.BASES)}.")
    variants = tuple(dict.fromkeys(catalogue.MODELS[base].variants + (variant,)))
    if variant not in catalogue.VARIANTS:
        raise InvalidRequest(f"Unknown variant {variant!r}; "
                             f"choose {', '.join(catalogue.VARIANTS)}.")
    loras_stored = [{"source": lora.source, "scale": lora.scale} for lora in loras]
    return {"name": name, "base": base, "source": str(source), "loras": loras_stored,
            "variants": list(variants),
            **{k: v for k, v in overrides.items() if v is not None}}


def _checked_name(name: str) -> None:
    try:
        user_models.check_name(name)
    except user_models.CatalogueError as e:
        raise InvalidRequest(f"Cannot add it: {e}.") from None


def _checked(name: str, entry: dict) -> catalogue.ModelSpec:
    try:
        return user_models.user_spec(name, entry)
    except user_models.CatalogueError as e:
        raise InvalidRequest(f"Cannot add {name}: {e}.") from None


def _refuse_broken(models: catalogue.Catalogue) -> None:
    """Rewriting a user file that did not load would lose what it holds: have it fixed first."""
    if models.problems:
        raise InvalidRequest(f"Fix or move away {models.file} first: {models.problems[0]}")


def _source_kind(source: str) -> str:
    """"folder", "single-file" or "hub"; a local file must be .safetensors (never pickle)."""
    path = Path(source)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise InvalidRequest(f"{source} is a folder without model_index.json: not a diffusers "
                                 f"pipeline folder.")
        return "folder"
    if _is_file(path):
        _safetensors_file(path, "checkpoint")
        return "single-file"
    if _is_hub_id(source):
        return "hub"
    raise InvalidRequest(f"{source} is neither a folder, a .safetensors file nor a Hub repo id "
                         f"(owner/name).")


def _is_file(path: Path) -> bool:
    """A file that exists, or a name that can only be one (a checkpoint's suffix): a Hub id
    such as stabilityai/stable-diffusion-xl-base-1.0 has a dot too, and is no file."""
    return path.is_file() or path.suffix.lower() in (".safetensors", *PICKLE)


def _is_hub_id(source: str) -> bool:
    return source.count("/") == 1 and not source.startswith((".", "/", "~"))


def _safetensors_file(path: Path, what: str) -> None:
    if path.suffix.lower() in PICKLE:
        raise InvalidRequest(f"{path}: {path.suffix} files are Python pickles, which can run code "
                             f"when read; only .safetensors {what}s are read. Convert it to "
                             f".safetensors first.")
    if path.suffix.lower() != ".safetensors":
        raise InvalidRequest(f"{path}: only .safetensors {what}s are read.")
    if not path.is_file():
        raise InvalidRequest(f"{path}: no such file.")


def _hub_inputs(source: str, kind: str, loras: tuple[Lora, ...], config: str) -> list[str]:
    """The Hub repos the add reads (each checked reachable first); LoRA files are checked here."""
    repos = [source] if kind == "hub" else []
    if kind == "single-file" and not Path(config).is_dir():
        repos.append(config)
    for lora in loras:
        path = Path(lora.source)
        if path.is_dir():
            if not any(path.glob("*.safetensors")):
                raise InvalidRequest(f"{path}: no .safetensors LoRA file in this folder.")
        elif _is_file(path) or not _is_hub_id(lora.source):
            _safetensors_file(path, "LoRA")
        else:
            repos.append(lora.source)
    return repos


def _export(registry: Registry, spec: catalogue.ModelSpec, kind: str, config: str,
            loras: tuple[Lora, ...]) -> Path:
    from export import convert, lora as lora_fusing
    from export.model import staged_build

    def build(staged: Path) -> dict:
        pipeline = _load(spec.source, kind, config)
        lora_fusing.fuse_into(pipeline, [(lora.source, lora.scale) for lora in loras])
        fused = staged.parent / "diffusers"
        pipeline.save_pretrained(fused)
        del pipeline  # never a torch model and its export alive together
        convert.export_pipeline(fused, staged)
        return dict(source=spec.source, base=spec.base, source_kind=kind,
                    config=config if kind == "single-file" else None,
                    loras=[dict(source=lora.source, scale=lora.scale,
                                sha256=_hashes(lora.source)) for lora in loras],
                    sha256=_hashes(spec.source),
                    method="diffusers load (safetensors only), LoRAs fused with load_lora_weights "
                           "+ set_adapters + fuse_lora, then optimum-intel export, fp16 weights")

    return staged_build(registry.folder(spec.id, "fp16"), spec.id, "fp16", build)


def _load(source: str, kind: str, config: str):
    from diffusers import StableDiffusionXLPipeline

    if kind == "single-file":  # the base's config: nothing fetched when it is a local folder
        return StableDiffusionXLPipeline.from_single_file(
            source, config=config, local_files_only=Path(config).is_dir())
    return StableDiffusionXLPipeline.from_pretrained(source, use_safetensors=True)


def _hashes(source: str) -> dict[str, str]:
    """sha256 of each .safetensors file read from `source` (a file, a folder, or a Hub repo's
    cached snapshot)."""
    path = Path(source)
    if not path.exists():
        import huggingface_hub

        path = Path(huggingface_hub.snapshot_download(source, local_files_only=True))
    files = [path] if path.is_file() else sorted(path.rglob("*.safetensors"))
    return {str(f.relative_to(path) if f != path else f.name): _sha256(f) for f in files}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_entries(models: catalogue.Catalogue, entries: dict) -> None:
    """Replace the user file in one step (a crash leaves the old or the new file, never half)."""
    models.file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=models.file.parent, suffix=".tmp", delete=False,
                                     encoding="utf-8") as f:
        json.dump({"models": entries}, f, indent=2)
        f.write("\n")
    os.replace(f.name, models.file)
