"""The user's own models: <models dir>/catalogue.json, written by `python -m export add`, read
into a Catalogue beside the built-in models (load). A broken file or entry never stops the app:
it is left out, and the catalogue's `problems` say which and why."""

import json
import re
import shlex
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from pipelines.catalogue import (AUTOENCODER_VARIANTS, AUTOENCODERS, BUILT_IN, MODELS, VARIANTS,
                                 Catalogue, ModelSpec, Range)

def add_command(model_id: str, entry: dict) -> str:
    """The `python -m export add` line of a user entry (with --config where it was given)."""
    words = ["python", "-m", "export", "add", model_id, "--from", entry["source"],
             "--base", entry["base"]]
    if entry.get("config"):
        words += ["--config", entry["config"]]
    for lora in entry.get("loras", []):
        words += ["--lora", f"{lora['source']}:{lora['scale']:g}"]
    for key in ("steps", "guidance", "size"):
        if entry.get(key) is not None:
            words += [f"--{key}", f"{entry[key]:g}"]
    return shlex.join(words)


USER_FILE = "catalogue.json"
BASES = ("sdxl-turbo", "sdxl-base", "segmind-vegart")  # what a user's model can take settings from
# Lowercase words joined by dashes: a folder name on every OS, never a path.
NAME_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_NAME = 64
# Names the models folder already uses for something else.
RESERVED = frozenset({"logs", *AUTOENCODERS, *(f"{a}-{v}" for a in AUTOENCODERS
                                                for v in AUTOENCODER_VARIANTS)})


class CatalogueError(ValueError):
    """A bad field of a user's catalogue entry (message: which and why)."""


def check_name(name: object) -> str:
    """A new model's id: a folder name, never a path, and no clash with what the models folder
    holds already. Raises CatalogueError."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_PATTERN.fullmatch(name):
        raise CatalogueError(
            f"the name {name!r} is not allowed: use lowercase letters, digits and single dashes "
            f"(such as my-model-2), at most {MAX_NAME} characters")
    if name in MODELS or name in RESERVED:
        raise CatalogueError(f"the name {name!r} is taken by a built-in model or autoencoder; "
                             f"choose another")
    return name


def user_spec(model_id: str, entry: object) -> ModelSpec:
    """The ModelSpec of a user entry: its base's, with its own name, source and any overrides
    of the default steps, guidance and size (a range widens to take the override). Raises
    CatalogueError naming the bad field."""
    check_name(model_id)
    if not isinstance(entry, dict):
        raise CatalogueError("the entry must be an object of fields")
    base_id = _field(entry, "base", str)
    if base_id not in BASES:
        raise CatalogueError(f"base: {base_id!r} is not one of {', '.join(BASES)}")
    base = MODELS[base_id]
    source = _field(entry, "source", str)
    variants = _field(entry, "variants", list)
    if "fp16" not in variants or any(v not in VARIANTS for v in variants):
        raise CatalogueError(f"variants: {variants!r} must hold fp16 and only "
                             f"{', '.join(VARIANTS)}")
    loras = _field(entry, "loras", list, default=[])
    if any(not isinstance(lora, dict) or not isinstance(lora.get("source"), str)
           or not _is_number(lora.get("scale")) for lora in loras):
        raise CatalogueError("loras: each must be an object with a source (text) and a scale "
                             "(a number)")
    overrides = {}
    for key in ("steps", "guidance", "size"):
        value = _field(entry, key, (int, float), default=None)
        if value is not None:
            overrides.update(_override(base, key, value))
    name = _field(entry, "name", str, default=model_id)
    _field(entry, "config", str, default=None)  # read by add_command
    return replace(base, id=model_id, name=name, source=source, variants=tuple(variants),
                   description=_field(entry, "description", str, default=describe(
                       source, base, loras)),
                   hub_exports={}, lora=None, stand_in=False, stands_in_for=None,
                   base=base_id, add_command=add_command(model_id, entry), **overrides)


def describe(source: str, base: ModelSpec, loras: list[dict]) -> str:
    with_loras = "".join(f", LoRA {lora['source']} at {lora['scale']:g}" for lora in loras)
    return f"Your model from {source}{with_loras}; {base.name}'s settings."


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field(entry: dict, key: str, kind, default=...):
    if key not in entry:
        if default is ...:
            raise CatalogueError(f"{key}: missing")
        return default
    value = entry[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or isinstance(value, bool) or value == "":
        raise CatalogueError(f"{key}: {value!r} is not {_kind_name(kinds)}")
    return value


def _kind_name(kinds: tuple) -> str:
    return {str: "a text", list: "a list", int: "a number"}[kinds[0]]


def _override(base: ModelSpec, key: str, value: float) -> dict:
    """The ranges an override of the default changes, widened to hold it."""
    if value < 0 or (key != "guidance" and value != int(value)) or value > 4096:
        raise CatalogueError(f"{key}: {value!r} is not a valid default")
    if key == "size" and value % base.size.step:
        raise CatalogueError(f"size: {value!r} is not a multiple of {base.size.step:g}")
    fields = {"steps": ("steps", "img2img_steps"), "guidance": ("guidance",),
              "size": ("size",)}[key]
    return {f: _around(getattr(base, f), value) for f in fields}


def _around(allowed: Range, value: float) -> Range:
    return replace(allowed, min=min(allowed.min, value), max=max(allowed.max, value),
                   default=value)


def user_file(models_dir: Path) -> Path:
    return Path(models_dir) / USER_FILE


def load(models_dir: Path | None) -> Catalogue:
    """The built-ins and the models folder's user models. A broken file or entry never stops
    the caller: it is left out, and `problems` says which file and field."""
    if models_dir is None or not user_file(models_dir).is_file():
        return replace(BUILT_IN, file=None if models_dir is None else user_file(models_dir))
    path = user_file(models_dir)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        return Catalogue(BUILT_IN.models, (f"{path}: not readable as JSON ({e}); serving the "
                                           f"built-in models only",), path)
    entries = stored.get("models") if isinstance(stored, dict) else None
    if not isinstance(entries, dict):
        return Catalogue(BUILT_IN.models, (f"{path}: models: missing, or not an object of "
                                           f"entries; serving the built-in models only",), path)
    models, problems = dict(MODELS), []
    for model_id, entry in entries.items():
        try:
            models[model_id] = user_spec(model_id, entry)
        except CatalogueError as e:
            problems.append(f"{path}: models.{model_id}: {e}; this model is left out")
    return Catalogue(MappingProxyType(models), tuple(problems), path)
