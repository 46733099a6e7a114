"""Making models servable: optimum-intel export of catalogue models into the models folder.
The only package that imports torch-heavy export code (lazily, inside the functions)."""

import shutil
import tempfile
import time
from pathlib import Path

from export import convert, manifest, tiny
from pipelines import catalogue
from pipelines.registry import default_models_dir


def export_model(model_id: str, variant: str = "fp16", models_dir: Path | None = None,
                 out: Path | None = None) -> Path:
    spec = catalogue.get(model_id)
    if variant not in spec.variants:
        raise ValueError(f"{spec.name} has no variant {variant!r}; choose {', '.join(spec.variants)}")
    out = Path(out or Path(models_dir or default_models_dir()) / model_id / variant)
    if spec.source is not None:
        convert.check_hub(spec.source, out)
    start = time.perf_counter()
    # Export next to the target and move it in at the end: a failed export never leaves a
    # half-written folder that the registry would take for a model.
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{variant}-") as work:
        work = Path(work)
        source = spec.source if spec.source is not None else tiny.save_source(work / "source")
        staged = convert.export_pipeline(source, work / "ov")
        manifest.write(staged, model_id=model_id, variant=variant,
                       source=spec.source or "built locally by export/tiny.py (random weights)",
                       method=f"optimum-intel export, {variant} weights",
                       seconds=time.perf_counter() - start)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out
