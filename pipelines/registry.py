"""Resolves a catalogue model + variant to an exported folder and loads it lazily, once.

Text-to-image, image-to-image and inpainting share one set of compiled OpenVINO models (no
second copy in memory). Every loaded model holds the registry's one run lock: an OpenVINO infer
request is not thread-safe, a scheduler carries state between steps, and on a CPU two
runs at once, even of two models, only split the cores. Loaded models stay within a RAM
budget: the least recently used one is evicted before another is loaded."""

import gc
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from pipelines import catalogue, hub_view, ir_precision, settings, user_models
from pipelines.catalogue import ModelSpec
from pipelines.compiled import CompiledParts, Shape, scheduler
from pipelines.device import precision_for, precision_hint
from pipelines.errors import InvalidSetting, ModelNotAvailable, summary
from pipelines.layout import VAE_HALVES

log = logging.getLogger(__name__)

TASKS = ("text2image", "image2image", "inpaint")
# Resident memory of a loaded model per byte of IR weights on disk. Measured here on the
# full-size SDXL-Turbo stand-in: 6.5 GB of FP16 IR, 15.0 GB peak RSS while generating 512².
RAM_PER_WEIGHT_BYTE = 2.3


def default_ram_budget() -> int:
    """Bytes loaded models may take unless the settings say: 3/4 of this machine's RAM."""
    return int(psutil.virtual_memory().total * 0.75)


def ram_estimate(folder: Path) -> int:
    """Bytes a model will take once loaded, from the size of its weights on disk."""
    weights = sum(f.stat().st_size for f in folder.glob("*/openvino_model.bin"))
    return int(weights * RAM_PER_WEIGHT_BYTE)


def folder_sizes(folder: Path) -> dict[str, int]:
    """Bytes on disk per component subfolder, and in all."""
    sizes = {sub.name: sum(f.stat().st_size for f in sub.rglob("*") if f.is_file())
             for sub in sorted(folder.iterdir()) if sub.is_dir()}
    sizes["total"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return sizes


def _holds_autoencoder(folder: Path) -> bool:
    """Whether a Tiny Autoencoder is exported in `folder` (both halves)."""
    return all((folder / half / "openvino_model.xml").is_file() for half in VAE_HALVES)


def _gb(size: int) -> str:
    return f"{size / 2**30:.1f} GB"


@dataclass
class Loaded:
    spec: ModelSpec
    variant: str
    folder: Path
    # The compiled parts and the openvino.genai pipelines on them, by task and decoder: all
    # share the compiled UNet and text encoders; with the fast decoder, TAESD replaces both
    # VAE halves.
    parts: CompiledParts
    load_seconds: float
    ram_estimate: int  # bytes, what the budget counts
    rss_growth: int  # bytes the process grew by while loading, as measured
    # Whether every part loaded was imported from the compiled-model store; None without it.
    from_cache: bool | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # the registry's run lock
    precision: str = ""  # the inference precision every part runs in

    def pipeline(self, task: str, fast_decoder: bool, prompt: str | None = None):
        """The openvino.genai pipeline for a task (one of TASKS) and decoder; with `prompt`, on
        its kept encodings (CompiledParts.freeze)."""
        return self.parts.pipeline(task, fast_decoder, prompt)

    def fit(self, width: int, height: int, guidance: float) -> bool:
        """With static shapes, recompile for this size if it is not the current one. Only under
        the lock: never reshape while a request runs. Returns whether it recompiled."""
        return self.parts.fit(unet_shape(self.spec, width, height, guidance))

    @property
    def has_fast_decoder(self) -> bool:
        return self.parts.autoencoder is not None

    def fast_decoder(self, requested: bool | None) -> bool:
        """Whether a request decodes with TAESD: as asked, or (None) the catalogue's default
        where the model's Tiny Autoencoder is exported."""
        if requested is None:
            return self.spec.fast_decoder_default and self.has_fast_decoder
        if requested and not self.has_fast_decoder:
            raise ModelNotAvailable(
                f"The fast decoder (TAESD) for {self.spec.name} is not exported. Run "
                f"`{catalogue.export_command(self.spec.fast_decoder or 'taesdxl')}`, then "
                f"restart the app.")
        return bool(requested)


class Registry:
    """The models of the catalogue and where each variant is, in four words:
    - exported: in the models folder, as `python -m export` leaves it (is_exported, folder);
    - available: loads now, without a download: exported, or its pre-exported repo in the
      Hugging Face cache (available, location, available_pairs);
    - offered: available, or downloaded on first use (offered_variants; offer_downloads);
    - served: what a tab serves of its models, the real ones offered, else their stand-ins
      (served).

    precision: "auto" (bf16 where the CPU has it, else f32), "bf16", "f16" or "f32". cache:
    the compiled-model store (compiled_store) in <models dir>/.ov-cache (or cache_dir).
    static_shapes: compile for the request's size, recompiling when it changes. ram_budget:
    bytes for loaded models (None: 3/4 of this machine's RAM). threads: CPU threads a
    generation uses (None: OpenVINO's choice, every core; a Ray replica gives its own share).
    Settings from flags and TURBO_* variables come through from_settings(); nothing here reads
    the environment for them."""

    def __init__(self, models_dir: Path | None = None, device: str = "CPU",
                 ram_budget: int | None = None, hub_cache: Path | None = None,
                 precision: str = "auto", cache: bool = True, static_shapes: bool = False,
                 cache_dir: Path | None = None, threads: int | None = None):
        import openvino as ov

        if ram_budget is not None and ram_budget <= 0:
            raise InvalidSetting(f"The RAM budget must be more than 0 bytes, not {ram_budget}.")
        self.models_dir = Path(models_dir) if models_dir else settings.Settings().models_dir
        self.hub_cache = hub_cache  # Hugging Face cache for pre-exported repos; None: HF's own
        self.device = device
        self.ram_budget = default_ram_budget() if ram_budget is None else ram_budget
        self.precision = precision.strip().lower()
        self.precision_hint = precision_hint(self.precision, device, ov.Core())  # checks it
        self.cache_dir = Path(cache_dir or self.models_dir / ".ov-cache") if cache else None
        # Servable views of pre-exported Hub snapshots (hub_view): the cache is never edited.
        self.views_dir = self.models_dir / ".hub-views"
        self._labels: dict[Path, str | None] = {}  # folder -> its UNet's precision, read once
        # (model id, variant) -> bytes: pre-exported repos the Hub answered for at start
        # (offer_downloads), offered though not here yet; downloaded on first use.
        self._downloads: dict[tuple[str, str], int] = {}
        self.static_shapes = static_shapes
        self.threads = threads
        # The built-in models and this folder's user models, read once.
        self.catalogue = user_models.load(self.models_dir)
        self._loaded: OrderedDict[tuple[str, str], Loaded] = OrderedDict()  # oldest use first
        self._loading = threading.Lock()  # one load or eviction at a time: they are memory-heavy
        self._fetching: dict[tuple[str, str], threading.Lock] = {}  # per model: _fetch_lock
        self._run_lock = threading.Lock()  # one generation at a time, whatever the model

    @classmethod
    def from_settings(cls, chosen: settings.Settings, **options) -> "Registry":
        """The registry these settings describe; `options` (hub_cache, cache_dir) as for the
        constructor."""
        return cls(chosen.models_dir, device=chosen.device, ram_budget=chosen.ram_budget,
                   precision=chosen.precision, cache=chosen.ov_cache,
                   static_shapes=chosen.static_shapes, **options)

    def folder(self, model_id: str, variant: str) -> Path:
        return self.models_dir / model_id / variant

    def is_exported(self, model_id: str, variant: str) -> bool:
        return (self.folder(model_id, variant) / "model_index.json").is_file()

    def available_pairs(self) -> list[tuple[str, str]]:
        """(model id, variant) pairs of the catalogue that can be served without exporting or
        downloading: exported here, or a pre-exported repo already in the Hugging Face cache
        (a Space's preload_from_hub puts them there)."""
        return [(spec.id, variant) for spec in self.catalogue.models.values()
                for variant in spec.variants if self.available(spec.id, variant)]

    def available(self, model_id: str, variant: str) -> bool:
        return self.location(model_id, variant) is not None

    def location(self, model_id: str, variant: str) -> Path | None:
        """The folder a model would load from now, without any download: the models folder
        first, then the Hugging Face cache."""
        if self.is_exported(model_id, variant):
            return self.folder(model_id, variant)
        return self.cached_hub_folder(model_id, variant)

    def cached_hub_folder(self, model_id: str, variant: str) -> Path | None:
        """The snapshot of the model's pre-exported repo in the Hugging Face cache, as the Hub
        lays it out (served through a view: servable())."""
        path = self._cached(self.catalogue.get(model_id).hub_exports.get(variant))
        return path if path is not None and hub_view.is_pipeline(path) else None

    def _cached(self, repo: str | None) -> Path | None:
        if repo is None:
            return None
        import huggingface_hub

        try:
            return Path(huggingface_hub.snapshot_download(repo, local_files_only=True,
                                                          cache_dir=self.hub_cache))
        except huggingface_hub.errors.LocalEntryNotFoundError:
            return None

    def servable(self, folder: Path) -> Path:
        """The folder openvino.genai loads for `folder`: itself where it is laid out as
        optimum-cli exports (ours are), else its view (hub_view), made once. Raises
        hub_view.LayoutError."""
        if hub_view.is_servable(folder):
            return folder
        return hub_view.pipeline_view(folder, self.views_dir)

    def label(self, model_id: str, variant: str) -> str | None:
        """What the variant's UNet really is (an ir_precision.LABELS key), read from its IR
        once; None where the variant is not here or its IR is unreadable."""
        folder = self.location(model_id, variant)
        if folder is None:
            return None
        if folder not in self._labels:
            try:
                self._labels[folder] = ir_precision.unet_label(folder)
            except (OSError, ValueError) as e:
                log.warning("Could not read the precision of %s: %s", folder, e)
                self._labels[folder] = None
        return self._labels[folder]

    def autoencoder_folder(self, autoencoder_id: str, variant: str = "fp16") -> Path:
        """<models>/<id>/ for the FP16 export, <models>/<id>-int8/ beside it for INT8 (a
        sibling, so that re-exporting one never removes the other)."""
        return self.models_dir / (autoencoder_id if variant == "fp16"
                                  else f"{autoencoder_id}-{variant}")

    def has_autoencoder(self, autoencoder_id: str, variant: str = "fp16") -> bool:
        """Whether the Tiny Autoencoder's variant is exported here, or (FP16) its
        pre-exported repo is in the Hugging Face cache."""
        return (_holds_autoencoder(self.autoencoder_folder(autoencoder_id, variant))
                or variant == "fp16" and self._cached_autoencoder(autoencoder_id) is not None)

    def _cached_autoencoder(self, autoencoder_id: str) -> Path | None:
        spec = catalogue.AUTOENCODERS.get(autoencoder_id)
        path = self._cached(spec.hub_export if spec else None)
        return path if path is not None and (path / VAE_HALVES[0]).is_dir() else None

    def autoencoder_for(self, spec: ModelSpec, variant: str) -> Path | None:
        """The TAESD folder a model variant decodes with: the INT8 TAESD for the INT8 variant
        when it is exported (INT8 end to end), else the FP16 one, else the view of its
        pre-exported repo in the Hugging Face cache; None if none is (or that repo cannot be
        served: the full VAE decodes then, and the log says why)."""
        if not spec.fast_decoder:
            return None
        for candidate in dict.fromkeys((variant, "fp16")):
            folder = self.autoencoder_folder(spec.fast_decoder, candidate)
            if _holds_autoencoder(folder):
                return folder
        cached = self._cached_autoencoder(spec.fast_decoder)
        if cached is None:
            return None
        try:
            return hub_view.autoencoder_view(cached, self.views_dir)
        except hub_view.LayoutError as e:
            log.warning("The fast decoder %s is not served: %s", spec.fast_decoder, e)
            return None

    def offered_variants(self, model_id: str) -> list[str]:
        """The model's catalogue variants that can be served here now, or downloaded on first
        use (offer_downloads), in catalogue order."""
        return [variant for variant in self.catalogue.get(model_id).variants
                if self.available(model_id, variant) or (model_id, variant) in self._downloads]

    def offer_downloads(self, sizes: dict[str, int]) -> None:
        """Offer the catalogue variants whose pre-exported repo is in `sizes` (repo -> bytes,
        hub_probe) and not here: they download on first use."""
        for spec in self.catalogue.models.values():
            for variant, repo in spec.hub_exports.items():
                if repo in sizes and not self.available(spec.id, variant):
                    self._downloads[spec.id, variant] = sizes[repo]

    def download_size(self, model_id: str, variant: str) -> int | None:
        """Bytes the variant downloads on first use; None where it is here (or not offered)."""
        if self.available(model_id, variant):
            return None
        return self._downloads.get((model_id, variant))

    def served(self, candidates: tuple[str, ...], building: bool = False) -> list[str]:
        """The models a tab serves of `candidates`: those offered here, else their stand-ins;
        every stand-in while `building` (the stand-ins are being built: each is offered as soon
        as it is) or where none is built yet, else those built."""
        real = [model_id for model_id in candidates if self.offered_variants(model_id)]
        if real:
            return real
        stand_ins = [self.catalogue.stand_in_for(model_id) for model_id in candidates]
        built = [model_id for model_id in stand_ins if self.offered_variants(model_id)]
        return stand_ins if building or not built else built

    def get(self, model_id: str, variant: str, download_progress=None) -> Loaded:
        """The loaded model, loading it on first use. Only catalogue models can be loaded.
        download_progress: a tqdm class for the download of a pre-exported repo, if one runs."""
        spec = self.catalogue.get(model_id)
        if variant not in spec.variants:
            raise KeyError(f"{spec.name} has no variant {variant!r}")
        key = (model_id, variant)
        with self._loading:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
        # A download (GBs) holds only its own model's lock: other models load and serve.
        with self._fetch_lock(key):
            folder = self.fetch(model_id, variant, download_progress)
        with self._loading:
            if key not in self._loaded:  # another request may have loaded it meanwhile
                self._make_room(spec, variant, ram_estimate(folder))
                self._loaded[key] = self._load(spec, variant, folder)
            self._loaded.move_to_end(key)
            return self._loaded[key]

    def _fetch_lock(self, key: tuple[str, str]) -> threading.Lock:
        """One fetch per model variant at a time, so two first requests download it once."""
        with self._loading:
            return self._fetching.setdefault(key, threading.Lock())

    def unload(self, model_id: str, variant: str, loaded: Loaded | None = None) -> None:
        """Free a model (after its running generation), if it is loaded (and is `loaded`, when
        given: a newer load of the same model stays)."""
        key = (model_id, variant)
        with self._loading:
            if key in self._loaded and loaded in (None, self._loaded[key]):
                self._evict(key)

    def ram_in_use(self) -> int:
        """Bytes the loaded models take, as the budget counts them."""
        with self._loading:
            return self._in_use()

    def _in_use(self) -> int:  # under self._loading
        return sum(m.ram_estimate for m in self._loaded.values())

    def loaded(self) -> list[tuple[str, str]]:
        """Keys of the models in memory, least recently used first."""
        with self._loading:
            return list(self._loaded)

    def precisions(self, model_id: str) -> dict[str, str]:
        """Variant -> inference precision of the model's loaded variants, read back from their
        compiled UNets. Does not wait for a load in progress (a snapshot of what is loaded)."""
        return {variant: loaded.precision for (loaded_id, variant), loaded
                in list(self._loaded.items()) if loaded_id == model_id}

    def disk_sizes(self, model_id: str, variant: str) -> dict[str, int]:
        return folder_sizes(self.location(model_id, variant) or self.folder(model_id, variant))

    def fetch(self, model_id: str, variant: str, download_progress=None) -> Path:
        """The folder the variant serves from: models folder → pre-exported Hub repo (cached,
        else downloaded, with its fast decoder's) → a clear error. A Hub snapshot serves
        through its view (hub_view), made here once. download_progress: a tqdm class."""
        spec = self.catalogue.get(model_id)
        found = self.location(spec.id, variant)
        if found is not None:
            return self.servable(found)
        repo = spec.hub_exports.get(variant)
        export = (f"Run `{catalogue.export_command(spec.id, variant, spec)}` (or give "
                  f"--models-dir, TURBO_MODELS_DIR, a folder that has it).")
        if repo is None:
            raise ModelNotAvailable(
                f"{spec.name} ({variant}) is not exported in {self.models_dir}. {export}")
        if settings.hub_offline():
            raise ModelNotAvailable(
                f"{spec.name} ({variant}) is not exported in {self.models_dir}, and its "
                f"pre-exported repo {repo} is not in the Hugging Face cache; HF_HUB_OFFLINE is "
                f"set, so it is not downloaded. Unset it to download, or {export[0].lower()}"
                f"{export[1:]}")
        folder = self._download(spec, variant, repo, export, download_progress)
        self.fetch_fast_decoder(spec.id, download_progress)
        return folder

    def fetch_fast_decoder(self, model_id: str, progress=None) -> None:
        """Download the model's pre-exported Tiny Autoencoder (a few MB) beside a downloaded
        model, where none is here: without it every image pays the full VAE. A failure only
        logs: the model serves with its own VAE."""
        spec = self.catalogue.get(model_id)
        autoencoder = catalogue.AUTOENCODERS.get(spec.fast_decoder or "")
        if autoencoder is None or not autoencoder.hub_export or self.has_autoencoder(
                autoencoder.id):
            return
        import huggingface_hub

        try:
            huggingface_hub.snapshot_download(autoencoder.hub_export, cache_dir=self.hub_cache,
                                              tqdm_class=progress)
        except Exception as e:  # noqa: BLE001 -- optional: the full VAE decodes instead
            log.warning("Downloading the fast decoder %s failed (%s); %s decodes with its "
                        "full VAE.", autoencoder.hub_export, summary(e), spec.name)

    def _download(self, spec: ModelSpec, variant: str, repo: str, export: str,
                  progress=None) -> Path:
        """The pre-exported folder into the Hugging Face cache. huggingface_hub shows a bar
        per file in the terminal; `progress` (a tqdm class) counts the files."""
        import huggingface_hub

        try:
            path = Path(huggingface_hub.snapshot_download(repo, cache_dir=self.hub_cache,
                                                          tqdm_class=progress))
        except Exception as e:  # network, auth, a missing repo: all end the same way for the user
            raise ModelNotAvailable(
                f"{spec.name} ({variant}): downloading {repo} failed ({summary(e)}). {export}"
            ) from e
        return self.servable(path)  # names what is wrong with a repo that cannot serve

    def _make_room(self, spec: ModelSpec, variant: str, needed: int) -> None:
        """Evict least recently used models until `needed` more bytes fit the budget."""
        if needed > self.ram_budget:
            raise ModelNotAvailable(
                f"{spec.name} ({variant}) needs about {_gb(needed)} of RAM; the budget is "
                f"{_gb(self.ram_budget)} (--ram-budget-gb, TURBO_RAM_BUDGET_GB). Raise it, or "
                f"use a smaller variant.")
        while self._loaded and self._in_use() + needed > self.ram_budget:
            self._evict(next(iter(self._loaded)))

    def _evict(self, key: tuple[str, str]) -> None:
        with self._loaded[key].lock:  # let a running generation finish first
            self._loaded[key].parts.forget_unsaved()
            del self._loaded[key]
        gc.collect()  # compiled models hold gigabytes: free them before the next load

    def ov_config(self) -> dict:
        """What every part of every model compiles with. PERFORMANCE_HINT LATENCY: one request
        at a time on every core. No CACHE_DIR: parts are saved once the model is idle instead
        (compiled_store says why); the store's key covers this whole config."""
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if self.precision_hint:
            config["INFERENCE_PRECISION_HINT"] = self.precision_hint
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        return config

    def _load(self, spec: ModelSpec, variant: str, folder: Path) -> Loaded:
        rss_before, start = psutil.Process().memory_info().rss, time.perf_counter()
        try:
            parts = self._compile(spec, variant, folder)
        except Exception as e:  # a damaged folder: say which, and how to fix it where one can
            raise ModelNotAvailable(
                f"{spec.name} ({variant}) in {folder} could not be loaded ({summary(e)}). "
                f"{self._repair(spec, variant, folder)}".rstrip()) from e
        from_cache = None if self.cache_dir is None else parts.imported == set(parts.compiled)
        return Loaded(spec=spec, variant=variant, folder=folder, parts=parts,
                      from_cache=from_cache, lock=self._run_lock,
                      precision=precision_for(self.device, self.ov_config()),
                      load_seconds=time.perf_counter() - start,
                      ram_estimate=ram_estimate(folder),
                      rss_growth=psutil.Process().memory_info().rss - rss_before)

    def _repair(self, spec: ModelSpec, variant: str, folder: Path) -> str:
        """How a user fixes a folder that would not load: export it again where it was
        exported here, fetch it again where it came from the Hub; nothing on a Space, whose
        visitors can do neither."""
        if settings.on_space():
            return ""
        if hub_view.manifest(folder):
            return (f"Its download may be incomplete or damaged: fetch it again with "
                    f"`python -m export pull {spec.id} --variant {variant}`.")
        return (f"The folder may be incomplete or damaged: export it again with "
                f"`{catalogue.export_command(spec.id, variant, spec)}`.")

    def _compile(self, spec: ModelSpec, variant: str, folder: Path) -> CompiledParts:
        """The model's compiled parts, with its Tiny Autoencoder where one is exported (then
        the full VAE compiles only when a request asks for it)."""
        # Static shapes start at the model's default size, what most requests ask for.
        size = int(spec.size.default)
        static = unet_shape(spec, size, size, spec.guidance.default) if self.static_shapes else None
        chosen = scheduler(spec.scheduler, folder / "scheduler" / "scheduler_config.json",
                           dict(spec.scheduler_options))
        return CompiledParts(folder, self.autoencoder_for(spec, variant), self.device,
                             self.ov_config(), chosen, static, store=self.cache_dir)


def unet_shape(spec: ModelSpec, width: int, height: int, guidance: float) -> Shape:
    """The UNet's input shape for a request: the batch is doubled where classifier-free
    guidance runs."""
    return Shape(2 if spec.guided(guidance) else 1, height, width)
