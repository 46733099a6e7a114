"""models/<id>/<variant>/manifest.json: where an exported folder came from and how it was made."""

import json
import platform
from datetime import datetime, UTC
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pipelines.registry import folder_sizes

PACKAGES = ("openvino", "optimum-intel", "diffusers", "transformers", "nncf", "torch")


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The installed version of each package that is installed."""
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def write(folder: Path, *, model_id: str, variant: str, source: str, method: str,
          seconds: float, **details) -> dict:
    manifest = {
        "model": model_id,
        "variant": variant,
        "source": source,
        "method": method,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "export_seconds": round(seconds, 1),
        "sizes_bytes": folder_sizes(folder),
        "versions": versions(),
        "python": platform.python_version(),
        **details,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
