"""Ratios, targets, the Markdown table and the PNG chart of one benchmark run."""

import json
import os
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path

STAGE_ORDER = ["text encoders", "VAE encoder", "UNet", "decoder", "total"]
BASELINE = "a0"
PEERS = {"a": "the OpenVINO notebook", "b": "the FastSD CPU way", "c": "openvino.genai"}


def _total(summary: dict, key: str, workload: str) -> float | None:
    entry = summary["configs"].get(key, {})
    return entry.get("median_seconds", {}).get(workload, {}).get("total")


def add_ratios(summary: dict) -> None:
    """Each configuration's time as a multiple of a0's, per workload, and the issue's targets
    checked on the best turbo-studio configuration."""
    for entry in summary["configs"].values():
        if "median_seconds" not in entry:
            continue
        entry["ratio_to_a0"] = {}
        for workload, medians in entry["median_seconds"].items():
            baseline = _total(summary, BASELINE, workload)
            if baseline:
                entry["ratio_to_a0"][workload] = round(medians["total"] / baseline, 3)
            floors = entry.get("floor_seconds", {}).get(workload)
            if floors:  # per stage, as timed, and in all
                entry.setdefault("times_floor", {})[workload] = {
                    stage: round(medians[stage] / seconds, 2)
                    for stage, seconds in floors.items() if medians.get(stage)}
    summary["targets"] = _targets(summary)


def _best(summary: dict, prefix: str, workload: str) -> tuple[str, float] | None:
    """The fastest of a family: "a" is a only (not a0), "c" is c-fp16 and c-int8."""
    timed = [(key, _total(summary, key, workload)) for key in summary["configs"]
             if (key == prefix or key.startswith(f"{prefix}-")) and _total(summary, key, workload)]
    return min(timed, key=lambda kv: kv[1]) if timed else None


def _targets(summary: dict) -> dict:
    targets = {}
    best = _best(summary, "e", "W1")
    if not best:
        return targets
    key, seconds = best
    targets["best turbo-studio (W1)"] = key
    a0 = _total(summary, BASELINE, "W1")
    if a0:
        targets["W1 ≤ 0.27× a0"] = check(seconds / a0, 0.27)
    for peer, name in PEERS.items():
        peer_best = _best(summary, peer, "W1")
        if peer_best:
            targets[f"W1 ≤ 0.9× {name} ({peer_best[0]})"] = check(seconds / peer_best[1], 0.9)
    best_w2, a0_w2 = _best(summary, "e", "W2"), _total(summary, BASELINE, "W2")
    if best_w2 and a0_w2:
        targets[f"W2 ≤ 0.3× a0 ({best_w2[0]})"] = check(best_w2[1] / a0_w2, 0.3)
    best_w5 = _best(summary, "e", "W5")
    alone = best_w5 and _total(summary, best_w5[0], "W1")
    if alone:  # a batch's seconds per image against one image alone, same configuration
        targets[f"W5 per image ≤ 0.9× W1 ({best_w5[0]})"] = check(best_w5[1] / alone, 0.9)
    floor = summary["configs"][key].get("floor_seconds", {}).get("W1")
    if floor:
        targets["W1 within 1.25× the compute floor"] = check(seconds / floor["total"], 1.25)
    for config, limit in (("e-int8-taesd", 5.0), ("e-fp16-taesd", 8.0)):
        rss = summary["configs"].get(config, {}).get("peak_rss_gb")
        if rss and "median_seconds" in summary["configs"][config]:
            targets[f"{config} peak RSS ≤ {limit:g} GB"] = check(rss, limit, "GB")
        given = summary.get("memory_limit_gb")
        if given and given <= limit and config in summary["configs"]:
            # Run inside a cgroup of `given` GB: it fits if it ran every workload there.
            ran = "median_seconds" in summary["configs"][config]
            targets[f"{config} runs within a {given:g} GB memory limit"] = (
                "yes" if ran else f"no ({summary['configs'][config].get('failed')})")
    entry = summary["configs"][key]
    genai_int8 = summary["configs"].get("c-int8", {}).get("cold_start_seconds")
    if genai_int8 and entry.get("cold_start_seconds"):  # both first starts, from empty caches
        # Every round's, where every round was a first start: the medians then.
        rounds = len(genai_int8) if summary.get("first_start_every_round") else 1
        targets["cold start ≤ openvino.genai's (c-int8)"] = check(
            statistics.median(entry["cold_start_seconds"][:rounds])
            / statistics.median(genai_int8[:rounds]), 1.0)
    if "cached_cold_start_seconds" in entry:
        targets["second cold start ≤ 0.5× the first"] = check(
            entry["cached_cold_start_seconds"] / entry["cold_start_seconds"][0], 0.5)
    return targets


# The packages a figure depends on, recorded with every run (those installed).
PACKAGES = ("openvino", "openvino-genai", "optimum-intel", "nncf", "diffusers", "transformers",
            "torch", "gradio", "ray")


def write(base: Path, summary: dict, text: str | None = None) -> None:
    """<base>.json (the summary, with where it was run: provenance()) and, given its Markdown
    `text`, <base>.md, ending with the same; creates the folder. Every results file is
    written here."""
    summary.update({key: value for key, value in provenance().items() if key not in summary})
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    if text is not None:
        base.with_suffix(".md").write_text(text.rstrip("\n") + "\n\n" + footer(summary) + "\n")


def publish(base: Path, summary: dict, text: str) -> None:
    """write(), then the Markdown on the console and where the files are."""
    write(base, summary, text)
    print(text)
    print(f"wrote {base}.json and .md")


def provenance() -> dict:
    """The date, the commit (with "+changes" where the tree differs from it), the packages'
    versions and the CPU a run had: what its figures depend on."""
    from benchmarks import machine

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=root)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+changes"
    return {"date": time.strftime("%Y-%m-%d"), "commit": commit,
            "versions": _versions(), "cpu": machine.cpu(), "cpu_count": os.cpu_count()}


def _versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found


def footer(summary: dict) -> str:
    versions = ", ".join(f"{name} {v}" for name, v in summary.get("versions", {}).items())
    return (f"_Run {summary.get('date', '?')} at commit {summary.get('commit', '?')} on "
            f"{summary.get('cpu', {}).get('name', '?')} ({summary.get('cpu_count', '?')} CPUs); "
            f"{versions}._")


def check(value: float, limit: float, unit: str = "×", at_most: bool = True) -> dict:
    """A target's entry: the value measured, its limit, and whether it is met (value ≤ limit,
    or ≥ where at_most is False)."""
    return {"value": round(value, 3), "limit": limit, "unit": unit,
            "met": value <= limit if at_most else value >= limit}


def targets_table(targets: dict) -> list[str]:
    """Markdown lines of the targets (an entry that is not a check is shown as it is)."""
    lines = ["", "| target | value | met |", "|---|---|---|"]
    for name, target in targets.items():
        if isinstance(target, dict):
            value = f"{target['value']} {target['unit']}".rstrip()  # a ratio may have no unit
            lines.append(f"| {name} | {value} | {'yes' if target['met'] else 'no'} |")
        else:
            lines.append(f"| {name} | {target} | |")
    return lines


def _memory(rss_gb: float | None = None, anon_gb: float | None = None) -> str:
    """"9.7 (5.9)": RSS, and in brackets its anonymous part (RSS less file-backed pages, which
    the kernel can drop under pressure), where measured."""
    if rss_gb is None:
        return "–"
    return f"{rss_gb:.1f}" + (f" ({anon_gb:.1f})" if anon_gb is not None else "")


def markdown(summary: dict) -> str:
    workloads = list(summary["workloads"])
    cpu = summary.get("cpu", {})
    lines = [f"### {summary['machine']}: {summary['model']}, medians of {summary['repeats']} "
             f"runs × {summary['rounds']} round(s) after a warm-up",
             "",
             f"CPU: {cpu.get('name', '?')}, {summary['cpu_count']} cores; OpenVINO can run "
             f"{', '.join(cpu.get('capabilities', []))} here (default precision "
             f"{cpu.get('default_precision', '?')}).",
             "",
             "| config | " + " | ".join(_heading(summary, w) for w in workloads)
             + " | cold start s | peak RSS GB (anon) | after 1st image GB (anon) | W1 × floor |",
             "|---|" + "---|" * (len(workloads) + 4)]
    for key, entry in summary["configs"].items():
        if "median_seconds" not in entry:
            why = entry.get("skipped") or f"failed: {entry.get('failed')}"
            lines.append(f"| {key}: {entry['label']} | {why} |" + " |" * (len(workloads) + 3))
            continue
        cells = [_cell(entry, w) for w in workloads]
        cold = " / ".join(f"{s:.1f}" for s in entry["cold_start_seconds"])
        if "cached_cold_start_seconds" in entry:
            cold += f" → cached {entry['cached_cold_start_seconds']:.1f}"
        floor = entry.get("times_floor", {}).get("W1", {}).get("total")
        lines.append(f"| {key}: {entry['label']} | " + " | ".join(cells)
                     + f" | {cold} | {_memory(entry['peak_rss_gb'], entry.get('peak_anon_gb'))} | "
                     + _memory(**entry.get("after_first_image", {})) + " | "
                     + (f"{floor:.2f}" if floor else "–") + " |")
    lines += ["", "Workloads: " + "; ".join(f"{k} = {v}" for k, v in summary["workloads"].items())
              + f". Peaks measured in this run: bf16 (f32 on a CPU without bf16) "
              f"{summary['peaks_tflops']['bf16']} TFLOP/s, "
              f"INT8 {summary['peaks_tflops']['int8']} TOP/s{_kernels(summary)}. Cold start = "
              f"load + first image "
              f"(per round; \"cached\": turbo-studio's next start, from its compiled-model "
              f"cache). Memory: RSS, and in brackets its anonymous part (RSS less file-backed "
              f"pages, such as memory-mapped weights, which the kernel drops again under "
              f"pressure); peak, and after the first image."]
    lines += _memory_limit(summary) + _load_per_part(summary) + floor_table(summary)
    if summary.get("targets"):
        lines += targets_table(summary["targets"])
    return "\n".join(lines) + "\n"


def _kernels(summary: dict) -> str:
    kernels = summary.get("peak_kernels")
    if not kernels:
        return ""
    return (f" (fastest kernels, from OpenVINO's runtime graph: {kernels['bf16']}; "
            f"{kernels['int8']})")


def _memory_limit(summary: dict) -> list[str]:
    """The run's memory limit, what each configuration was charged under it, and whether the
    page cache was emptied first (else earlier cached pages were not charged); none without."""
    if not summary.get("memory_limit_gb"):
        return []
    limited = {key: entry for key, entry in summary["configs"].items()
               if "memory_limit_peak_gb" in entry}
    charged = ", ".join(f"{key} {entry['memory_limit_peak_gb']:.2f} GB"
                        for key, entry in limited.items())
    cache = ("The page cache was emptied before each, so every file page it mapped was charged "
             "to it." if all(entry.get("page_cache_emptied") for entry in limited.values())
             else "The page cache could not be emptied (not root): file pages cached before a "
                  "configuration started were not charged to it.")
    return ["", f"Memory limit: each configuration ran in a memory cgroup of "
                f"{summary['memory_limit_gb']:g} GB (RSS and page cache together); the most "
                f"each was charged: {charged}. {cache}"]


def _load_per_part(summary: dict) -> list[str]:
    """A line per turbo-studio configuration: each part's compile time on its first start (a
    part compiled on first use, such as the full VAE beside TAESD, only if a workload used it)."""
    lines = [f"- {key}: " + ", ".join(f"{part} {seconds:.1f} s" for part, seconds in parts.items())
             + (f"; then saved for the next start in {entry['save_seconds'][0]:.1f} s, after "
                f"the first image (the wait for the model to be idle included)"
                if entry.get("save_seconds") else "")
             for key, entry in summary["configs"].items()
             if (parts := entry.get("load_per_part_seconds"))]
    return (["", "Load per part, first start (compile from an empty cache):", "", *lines]
            if lines else [])


def floor_table(summary: dict) -> list[str]:
    """Markdown lines: each W1 stage of the best turbo-studio configuration against its floor
    (its FLOPs at the peak of the precision it computes in)."""
    best = _best(summary, "e", "W1")
    entry = summary["configs"][best[0]] if best else {}
    floors = entry.get("floor_seconds", {}).get("W1")
    if not floors:
        return []
    medians, ratios = entry["median_seconds"]["W1"], entry["times_floor"]["W1"]
    lines = ["", f"Compute floor per stage, W1, {best[0]}:", "",
             "| stage | median s | floor s | × floor |", "|---|---|---|---|"]
    for stage, seconds in floors.items():
        if stage in ratios:
            lines.append(f"| {stage} | {medians[stage]} | {seconds} | {ratios[stage]} |")
    return lines


def _is_fps(summary: dict, workload: str) -> bool:
    return any(workload in entry.get("fps", {}) for entry in summary["configs"].values())


def _heading(summary: dict, workload: str) -> str:
    return f"{workload} fps (s)" if _is_fps(summary, workload) else f"{workload} s (× a0)"


def _cell(entry: dict, workload: str) -> str:
    """Seconds (and the ratio to a0), frames per second (and seconds) for live workloads, or
    "–" where this configuration does not run the workload."""
    medians = entry["median_seconds"].get(workload)
    if medians is None:
        return "–"
    if workload in entry.get("fps", {}):
        return f"{entry['fps'][workload]:.2f} ({medians['total']:.2f})"
    ratio = entry.get("ratio_to_a0", {}).get(workload)  # none when a0 did not run
    return f"{medians['total']:.2f}" + ("" if ratio is None else f" ({ratio:.2f})")


def chart(summary: dict, path: Path) -> None:
    """Stacked horizontal bars: W1's time per stage for each configuration that ran."""
    import matplotlib
    matplotlib.use("Agg")  # no screen
    import matplotlib.pyplot as plt

    timed = [(key, entry["median_seconds"]["W1"]) for key, entry in summary["configs"].items()
             if "W1" in entry.get("median_seconds", {})]
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(timed) + 1.5))
    labels = [key for key, _ in timed]
    left = [0.0] * len(timed)
    for stage in STAGE_ORDER[:-1]:
        widths = [medians.get(stage, 0.0) for _, medians in timed]
        ax.barh(labels, widths, left=left, label=stage)
        left = [a + b for a, b in zip(left, widths)]
    other = [medians["total"] - done for (_, medians), done in zip(timed, left)]
    ax.barh(labels, [max(o, 0.0) for o in other], left=left, label="other (scheduler, Python)",
            color="lightgrey")
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median)")
    ax.set_title(f"{summary['workloads'].get('W1', 'W1')} — {summary['machine']}, "
                 f"{summary['model']}")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
