"""optimum-intel export of a diffusers SDXL pipeline (a Hub id or a local folder) to OpenVINO IR."""

import gc
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.errors import HubUnreachable
from pipelines.settings import hub_offline


def check_hub(repo: str, out: Path, timeout: float = 5.0, advice: str | None = None) -> None:
    """Fail at once, with what to do instead, when the Hub cannot be reached: the export would
    otherwise retry for minutes before failing with a long traceback."""
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    advice = advice or (
        f"Either run this where the Hub is reachable, or copy an already exported OpenVINO "
        f"folder of {repo} (optimum-intel layout: model_index.json, unet/, vae_decoder/, ...) "
        f"into {out}.")
    if hub_offline():
        raise HubUnreachable(f"Cannot download {repo}: HF_HUB_OFFLINE is set. {advice}")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise HubUnreachable(f"Cannot download {repo}: the Hugging Face Hub ({host}) is "
                             f"unreachable ({e.__class__.__name__}: {e}). {advice}") from None


def export_pipeline(source: str | Path, out: Path, weight_format: str = "fp16") -> Path:
    """Run optimum-intel's exporter as `optimum-cli export openvino --task text-to-image
    --weight-format fp16` does. The explicit weight format matters: without it the exporter
    silently gives submodels over 1e9 parameters (the SDXL UNet) INT8 weights."""
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    out.mkdir(parents=True, exist_ok=True)
    with gc_frozen():
        main_export(
            model_name_or_path=str(source),
            output=out,
            task="text-to-image",
            library_name="diffusers",
            ov_config=OVConfig(dtype=weight_format),
            # openvino_tokenizer.xml lets openvino.genai load the folder too
            convert_tokenizer=True,
        )
    return out


@contextmanager
def gc_frozen():
    """Exclude the objects alive before an export from the garbage collector's full passes while
    it runs. optimum-intel calls gc.collect() after each submodel it converts (16 times for an
    SDXL pipeline), and each pass walks every tracked object of the process: in the app or the
    test suite (~700k objects) those passes took 6.4 s of a 20 s tiny-stand-in export, and the
    export 0.63x as long with them frozen (measured in one process). Reference counting still
    frees everything and new objects are collected as usual; only a frozen object that becomes
    cyclic garbage meanwhile waits until the unfreeze. The first collect keeps earlier garbage
    out of the frozen set. Where objects are frozen already (an outer export, or a host process
    that froze its own) they are left as they are."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def from_exported(pipeline_class, folder: Path, **options):
    """`pipeline_class.from_pretrained` on an exported local folder, without the Hub look-up
    optimum-intel 2.2.0 makes first. OVBaseModel.from_pretrained checks whether the folder is
    OpenVINO IR already; offline (HF_HUB_OFFLINE, as offline starts and the tests run) it treats
    the folder's path as a Hub repo id and reads '<HF cache>/models----<path>/refs/main', so every
    load printed "Could not infer whether the model was already converted" and an [Errno 2]
    line. No flag avoids it (local_files_only is what takes that branch; export=False is
    already passed). We know the answer, so call the loader that check hands over to
    (optimum's OptimizedModel.from_pretrained) with export=False ourselves: nothing else in
    that check applies to a local IR folder."""
    from optimum.intel.openvino.modeling_base import OVBaseModel

    return super(OVBaseModel, pipeline_class).from_pretrained(  # wants a str, not a Path
        str(folder), export=False, local_files_only=True, **options)
