"""The FP16 vs INT8 tab: one prompt and seed on both variants, side by side, with the figures
that tell what INT8 buys (latency per stage, disk, memory) and costs (PSNR, SSIM)."""

import gradio as gr
import pandas as pd

from pipelines import catalogue, compare, hub_probe, ir_precision
from pipelines.errors import UserError
from pipelines.engine import LocalEngine
from pipelines.registry import Registry
from pipelines.requests import MAX_SEED, Text2Image
from ui import examples
from ui.generation import document
from ui.running import GENERATION, user_error


def compare_tab(engine: LocalEngine, model_id: str) -> gr.Markdown:
    """Build the tab; returns its note on missing variants (to refresh when one is built)."""
    registry = engine.registry
    spec = catalogue.get(model_id)
    # ui.demo refreshes it on every page load: a variant exported since the start shows.
    note = gr.Markdown(missing_note(registry, model_id), elem_id="compare-missing")
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", lines=2, scale=3, value=examples.PROMPTS[0])
        with gr.Column(scale=1):
            steps = gr.Slider(label="Steps", minimum=spec.steps.min, maximum=spec.steps.max,
                              value=spec.steps.default, step=1)
            seed = gr.Number(label="Seed", value=0, precision=0, minimum=0, maximum=MAX_SEED)
            button = gr.Button("Compare FP16 and INT8", variant="primary")
    with gr.Row():
        fp16_image = gr.Image(label="FP16", type="pil", format="png", height=384,
                              interactive=False)
        int8_image = gr.Image(label="INT8", type="pil", format="png", height=384,
                              interactive=False)
    with gr.Row():
        table = gr.Markdown()
        chart = gr.BarPlot(x="variant", y="seconds", color="stage", y_title="seconds",
                           title="Latency per stage")
    figures = gr.JSON(label="All figures", visible=False)

    def compare_variants(prompt, steps, seed, progress=gr.Progress()):
        """Generate one prompt and seed with the FP16 and the INT8 variant of the model, one
        after the other, to see what INT8 quantization buys and costs. Returns both images, a
        Markdown table (latency per stage, sizes on disk, memory, speedup, PSNR and SSIM), the
        latencies per stage, and every figure as JSON (both variants use the same seed)."""
        progress(0, desc="FP16, then INT8 (loading compiles each once)…")
        request = Text2Image(prompt=prompt, model_id=model_id, seed=seed, steps=steps)
        try:
            comparison = engine.compare(request)
        except UserError as e:
            raise user_error(e) from None
        fp16, int8 = (run.result.image for run in comparison.runs)
        labels = [registry.label(model_id, run.variant) for run in comparison.runs]
        return (fp16, int8, comparison_table(comparison, labels), latency_frame(comparison),
                comparison_figures(comparison))

    # The generation group: the two runs never share the cores with another generation, so
    # their times are comparable.
    document(compare_variants)
    gr.on([button.click, prompt.submit], compare_variants, inputs=[prompt, steps, seed],
          outputs=[fp16_image, int8_image, table, chart, figures], api_name="compare",
          concurrency_id=GENERATION, concurrency_limit=engine.slots)
    return note


def missing_note(registry: Registry, model_id: str) -> str:
    """What the comparison still needs: each missing variant's export command, or, where its
    pre-exported repo is offered (an online first start), that it downloads on first use."""
    missing = [v for v in compare.VARIANTS if not registry.available(model_id, v)]
    downloads = {v: size for v in missing
                 if (size := registry.download_size(model_id, v)) is not None}
    exports = [v for v in missing if v not in downloads]
    lines = [f"{catalogue.VARIANTS[v]} downloads {hub_probe.gigabytes(size)} on the first "
             "comparison." for v, size in downloads.items()]
    if exports:
        lines.insert(0, "To compare, export the missing variant: "
                     + " and ".join(f"`{catalogue.export_command(model_id, v)}`" for v in exports)
                     + "; it is offered as soon as it is exported (reload the page).")
    return " ".join(lines)


def comparison_table(comparison: compare.Comparison, labels: list[str | None] = ()) -> str:
    """Markdown: the figures of both runs side by side; labels: what each variant's UNet is,
    read from its graph (Registry.label), where known."""
    fp16, int8 = comparison.runs
    read = [ir_precision.describe(label) if label else "unknown" for label in labels]
    rows = [("UNet (read from its graph)", *read)] if any(labels) else []
    rows += [("total latency", *(f"{run.result.timings['total']:.2f} s" for run in (fp16, int8)))]
    rows += [(stage, *(f"{run.result.timings.get(stage, 0):.2f} s" for run in (fp16, int8)))
             for stage in fp16.result.timings if stage != "total"]
    rows += [("UNet on disk", *(_mb(run.unet_bytes) for run in (fp16, int8))),
             ("pipeline on disk", *(_mb(run.pipeline_bytes) for run in (fp16, int8))),
             ("memory when loaded (RSS growth)", *(_mb(run.rss_growth) for run in (fp16, int8)))]
    lines = ["| | FP16 | INT8 |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append(f"\n**INT8 is {comparison.speedup:.2f}× as fast** in all · PSNR "
                 f"{comparison.psnr:.2f} dB · SSIM {comparison.ssim:.4f} (INT8 against FP16)")
    lines += [f"- {note}" for note in comparison.notes]
    return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def latency_frame(comparison: compare.Comparison) -> pd.DataFrame:
    return pd.DataFrame([{"variant": run.variant.upper(), "stage": stage, "seconds": seconds}
                         for run in comparison.runs
                         for stage, seconds in run.result.timings.items() if stage != "total"])


def comparison_figures(comparison: compare.Comparison) -> dict:
    """Every figure of the comparison, for API users."""
    return {
        "speedup": comparison.speedup,
        "psnr_db": None if comparison.psnr == float("inf") else comparison.psnr,
        "identical": comparison.psnr == float("inf"),
        "ssim": comparison.ssim,
        "notes": comparison.notes,
        **{run.variant: {"seconds": run.result.timings, "unet_bytes": run.unet_bytes,
                         "pipeline_bytes": run.pipeline_bytes, "rss_growth_bytes": run.rss_growth}
           for run in comparison.runs},
    }
