"""Running a generation for a page event: validation, loading on first use, streaming previews,
Stop, and user errors turned into messages. Every tab's events go through here."""

import functools
import html
import threading

import gradio as gr
from PIL import Image, ImageChops

from pipelines import generate, pngmeta, stream
from pipelines.engine import LocalEngine
from pipelines.errors import UserError
from pipelines.requests import (Image2Image, Inpaint, InvalidRequest, Result, Text2Image,
                                load_image, load_mask, validate)
from ui.results import png_file

# Every event that generates shares this one concurrency group, as many runs at once as the
# engine has slots: one in this process (on a 2-core CPU two runs at once, even of two models,
# only split the cores, so both finish later than one after the other would; queued users wait
# their turn instead), one per replica on Ray Serve. (Real-time runs have their own group, to
# supersede stale requests at once; the registry's run lock, or a replica's, still makes them
# take turns.)
GENERATION = "generation"


def user_error(e: Exception) -> gr.Error:
    """gr.Error renders HTML, and messages quote what the user typed: escape it."""
    return gr.Error(html.escape(str(e)), print_exception=False)


def describe(result: Result) -> str:
    """Markdown shown under the image: seed, time per stage (and which decoder), warnings."""
    total = result.timings["total"]
    lines = [f"**{total:.2f} s** in all ({_stages(result)}) · seed {result.seed}"
             f"{_where(result)}"]
    lines += [f"- ⚠ {warning}" for warning in result.warnings]
    return "\n".join(lines)


def describe_batch(results: list[Result], wanted: int) -> str:
    """describe() for the images of a batch done so far: the time in all and per image, then
    each image's seed and stages."""
    if wanted == 1:
        return describe(results[0])
    total = sum(result.timings["total"] for result in results)
    lines = [f"**{total:.2f} s** for {len(results)} of {wanted} images "
             f"({total / len(results):.2f} s per image)"]
    lines += [f"- image {i} · seed {result.seed} · {result.timings['total']:.2f} s "
              f"({_stages(result)}){_where(result)}" for i, result in enumerate(results, 1)]
    lines += [f"- ⚠ {warning}" for warning in results[0].warnings]  # the same for every image
    return "\n".join(lines)


def _where(result: Result) -> str:
    return f" · replica {result.served_by}" if result.served_by else ""


def _stages(result: Result) -> str:
    return " · ".join(f"{stage} ({result.decoder}) {seconds:.2f} s" if stage == "decoder"
                      else f"{stage} {seconds:.2f} s"
                      for stage, seconds in result.timings.items() if stage != "total")


def image_request(path, **fields) -> Image2Image:
    """An Image2Image request for an uploaded file (opened safely, see requests.load_image)."""
    try:
        picture = load_image(path) if path else None
    except UserError as e:
        raise user_error(e) from None
    return Image2Image(image=picture, **fields)


def inpaint_request(editor: dict | None, **fields) -> Inpaint:
    """An Inpaint request for an image editor's value (files): its background is the image, its
    layers together the mask; the composite is not needed."""
    editor = editor or {}
    try:
        picture = load_image(editor["background"]) if editor.get("background") else None
        masks = [load_mask(layer) for layer in editor.get("layers") or [] if layer]
        return Inpaint(image=picture, mask=_union(masks), **fields)
    except UserError as e:
        raise user_error(e) from None


def _union(masks: list[Image.Image]) -> Image.Image | None:
    """Every layer's painted pixels (the brightest of them), None where there is no layer."""
    if any(mask.size != masks[0].size for mask in masks):
        raise InvalidRequest("The mask layers differ in size; each must be the image's size.")
    return functools.reduce(ImageChops.lighter, masks) if masks else None


def download_bar(progress: gr.Progress):
    """A tqdm class that also reports to the user's progress bar: the registry hands it to
    huggingface_hub when it downloads a pre-exported model (it counts the files)."""
    from tqdm.auto import tqdm

    class DownloadBar(tqdm):
        def update(self, n=1):
            done = super().update(n)
            if self.total:
                progress((self.n, self.total), desc="Downloading the model", unit="files")
            return done

    return DownloadBar


def _load(engine: LocalEngine, request: Text2Image, progress: gr.Progress) -> None:
    progress(0, desc="Loading the model (first use downloads or compiles it)…")
    engine.load(request.model_id, request.variant, download_progress=download_bar(progress))


def _denoising(progress: gr.Progress):
    return lambda done, total: progress((done, total), desc="Denoising")


def _show(engine: LocalEngine, result: Result, request: Text2Image, warn: bool = True) -> Result:
    for warning in result.warnings if warn else ():
        gr.Warning(html.escape(warning))
    # the PNG users download carries the settings
    pngmeta.tag(result, request, engine.registry.catalogue)
    return result


def run_request(engine: LocalEngine, request: Text2Image, progress: gr.Progress) -> Result:
    """Validate, load on first use, generate; user-fixable problems become gr.Error."""
    try:
        request = validate(request, engine.registry.catalogue)
        _load(engine, request, progress)
        result = engine.run(request, on_step=_denoising(progress))
    except UserError as e:
        raise user_error(e) from None
    return _show(engine, result, request)


class Runs:
    """The running generation's stop flag per browser session, for one tab's Stop button: Stop
    stops its own user's run in its own tab only. One per tab, never shared between apps."""

    def __init__(self):
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self, session: str) -> threading.Event:
        flag = threading.Event()
        with self._lock:
            self._flags[session] = flag
        return flag

    def finish(self, session: str, flag: threading.Event) -> None:
        with self._lock:
            if self._flags.get(session) is flag:
                del self._flags[session]

    def stop(self, session: str) -> None:
        with self._lock:
            flag = self._flags.get(session)
        if flag is not None:
            flag.set()


def stream_request(engine: LocalEngine, request: Text2Image, runs: Runs, session: str,
                   progress: gr.Progress):
    """Like run_request, but yields (image, seed, info, batch gallery) for each preview
    (multi-step runs where the fast decoder is exported), then for each image of the batch as
    it is done; the tab's Stop button ends it (the images done so far stay)."""
    flag = runs.start(session)  # from here on, Stop counts: while loading too
    results, shown = [], []
    try:
        request = validate(request, engine.registry.catalogue)
        _load(engine, request, progress)
        if flag.is_set():
            yield gr.skip(), gr.skip(), "⏹ Stopped before the first step.", gr.skip()
            return
        for item in engine.stream(request, stop=flag, on_step=_denoising(progress)):
            if isinstance(item, stream.Preview):
                yield item.image, gr.skip(), _preview_info(item, request.images), gr.skip()
                continue
            results.append(_show(engine, item, request, warn=not shown))
            # Files, not images: each yield hands gradio the whole batch again (see png_file).
            shown.append((png_file(item.image), f"seed {item.seed}"))
            yield shown[-1][0], results[0].seed, describe_batch(results, request.images), shown
    except UserError as e:
        raise user_error(e) from None
    except generate.Stopped as e:
        done = f" {len(results)} of {request.images} images done." if request.images > 1 else ""
        yield gr.skip(), gr.skip(), f"⏹ {e}{done}", gr.skip()
    finally:
        runs.finish(session, flag)


def _preview_info(preview: stream.Preview, images: int) -> str:
    image = f"Image {preview.index + 1} of {images}, step" if images > 1 else "Step"
    return f"{image} {preview.step} of {preview.steps}…"


def stop_button(runs: Runs, api_name: str) -> gr.Button:
    """A Stop button for its user's running generation in this tab (outside the generation
    group, so it is never queued behind the run it stops)."""
    button = gr.Button("Stop", variant="stop")

    def stop(http: gr.Request) -> None:
        """Stop this session's running generation in this tab at its next step."""
        runs.stop(http.session_hash)

    # queue=False: a full queue must not refuse a Stop. Undocumented: callable by API clients
    # (their own session's run), but no MCP tool: an agent's call has a session of its own.
    button.click(stop, api_name=api_name, queue=False, api_visibility="undocumented")
    return button
