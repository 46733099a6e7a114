"""What the tabs offer to try: example prompts and images, from assets/ (the one folder of ours
gradio may serve)."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PROMPTS = [
    "a cinematic photo of a red fox in a snowy forest at sunrise, detailed fur",
    "an astronaut reading a book in a flower garden, watercolor",
    "a futuristic city street at night with neon lights in the rain",
    "a cute robot holding a cup of tea, 3d render, soft lighting",
]
IMAGE = ASSETS / "examples" / "dusk-hills.png"
IMAGE_PROMPT = "a castle on the hills at dusk, oil painting"
INPAINT_PROMPT = "a full moon in the sky"
