"""Serving imports no torch: what the app and `python -m pipelines generate` load is what
requirements.txt installs (openvino.genai, no torch, optimum-intel, diffusers or transformers).
Checked in a fresh interpreter, through a real generation and the app's build."""

import subprocess
import sys

EXPORT_SIDE = ("torch", "torchvision", "optimum", "diffusers", "transformers", "nncf", "peft")

SERVE = """
import sys
from pathlib import Path
import app
from pipelines import generate
from pipelines.registry import Registry
from pipelines.requests import Image2Image, Text2Image, validate
from PIL import Image

models = Path(sys.argv[1])
loaded = Registry(models).get("tiny", "fp16")
image = generate.run(loaded, validate(Text2Image(prompt="a lighthouse", model_id="tiny", seed=1,
                                                 width=256, height=256))).image
generate.run(loaded, validate(Image2Image(prompt="a castle", model_id="tiny", seed=1,
                                          image=image, fast_decoder=False)))
app.create_demo(app.parse_settings(["--models-dir", str(models)]))
heavy = sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[2:])
print("IMPORTED:", " ".join(heavy) or "-")
"""


def test_generating_and_building_the_app_import_nothing_from_the_export_side(models_dir):
    done = subprocess.run([sys.executable, "-c", SERVE, str(models_dir), *EXPORT_SIDE],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED: -"
