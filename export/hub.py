"""Share an exported folder on the Hugging Face Hub, with a model card, so that others (and
Spaces) download it instead of exporting or quantizing it themselves."""

import json
from pathlib import Path

from export import convert
from pipelines import catalogue
from pipelines.errors import InvalidRequest
from pipelines.registry import Registry


def push(model_id: str, variant: str, repo: str, models_dir: Path | None = None, *,
         private: bool = False, api=None) -> str:
    """Upload <models dir>/<model>/<variant>/ to `repo` (created if missing) with a README.md
    model card; returns the repo's URL. The model may be the user's own (`export add`): the
    models folder's catalogue names it. `api`: a huggingface_hub.HfApi (tests pass a stand-in)."""
    registry = Registry(models_dir)
    if model_id not in registry.catalogue:
        raise InvalidRequest(f"No model {model_id!r} in {registry.models_dir}; known: "
                             f"{', '.join(registry.catalogue.models)}.")
    spec = registry.catalogue.get(model_id)
    folder = registry.folder(model_id, variant)
    if not registry.is_exported(model_id, variant):
        raise InvalidRequest(f"{spec.name} ({variant}) is not exported in {registry.models_dir}: "
                             f"run `{catalogue.export_command(model_id, variant, spec)}` first.")
    if "/" not in repo:
        raise InvalidRequest(f"--repo takes USER/NAME (or ORG/NAME), not {repo!r}.")
    if api is None:
        from huggingface_hub import HfApi

        convert.check_hub(repo, folder, advice="Run this where the Hub is reachable, logged in "
                                               "(`hf auth login`) or with HF_TOKEN set.")
        api = HfApi()
    url = api.create_repo(repo, private=private, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo,
                      commit_message=f"{spec.name} ({variant}), exported by turbo-studio")
    api.upload_file(path_or_fileobj=model_card(folder, spec, variant, repo).encode(),
                    path_in_repo="README.md", repo_id=repo, commit_message="Model card")
    return str(url)


def model_card(folder: Path, spec: catalogue.ModelSpec, variant: str, repo: str) -> str:
    """README.md for the Hub: where the weights came from, how they were made, what the folder
    holds (from its manifest), and how to use it."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    sizes = manifest.get("sizes_bytes", {})
    size_rows = "\n".join(f"| {part} | {size / 2**20:,.1f} MB |" for part, size in sizes.items())
    versions = ", ".join(f"{name} {version}"
                         for name, version in manifest.get("versions", {}).items())
    front = ["---", "library_name: openvino", "pipeline_tag: text-to-image",
             "tags: [openvino, optimum-intel, turbo-studio, sdxl]"]
    if spec.source and not Path(spec.source).expanduser().exists():  # a Hub id, not a file
        front.append(f"base_model: {spec.source}")
    front.append("---")
    details = {key: value for key, value in manifest.items()
               if key not in ("sizes_bytes", "versions")}
    return "\n".join(front) + f"""

# {spec.name} ({variant}) for OpenVINO

{spec.description}

- **Source:** {manifest.get('source', spec.source or 'built locally')}
- **Method:** {manifest.get('method', 'unknown')}
- **Exported:** {manifest.get('created', 'unknown')} with {versions or 'unrecorded versions'}

The folder has the optimum-intel layout (`model_index.json`, `unet/`, `vae_decoder/`,
`vae_encoder/`, `text_encoder/`, `text_encoder_2/`, tokenizers, scheduler), as written by
turbo-studio's `{_made_by(spec, variant)}`.
Check the source model's license before you use these weights.

## Sizes on disk

| part | size |
|---|---|
{size_rows}

## Use it

With turbo-studio: {_where_it_goes(spec, variant, repo)}, or download it into the models
folder yourself:

```bash
hf download {repo} --local-dir models/{spec.id}/{variant}
python -m pipelines generate "a red fox in the snow" --model {spec.id} --variant {variant} \\
    -o fox.png
```

With optimum-intel:

```python
from optimum.intel import OVStableDiffusionXLPipeline
pipe = OVStableDiffusionXLPipeline.from_pretrained("{repo}")
image = pipe("a red fox in the snow", num_inference_steps=1, guidance_scale=0.0).images[0]
```

## manifest.json

```json
{json.dumps(details, indent=2)}
```
"""


def _made_by(spec: catalogue.ModelSpec, variant: str) -> str:
    """The command that made the folder: `export add` for a user's model."""
    if spec.base:
        suffix = "" if variant == "fp16" else f" --variant {variant}"
        return spec.add_command + suffix
    return catalogue.export_command(spec.id, variant)


def _where_it_goes(spec: catalogue.ModelSpec, variant: str, repo: str) -> str:
    if spec.base:  # the user's own: no catalogue of ours names it
        return (f"`{spec.id}` is served from `models/{spec.id}/{variant}` where the models "
                f"folder's `catalogue.json` has its entry (`export add` writes it)")
    return (f"put the repo in the catalogue (`hub_exports={{\"{variant}\": \"{repo}\"}}` of "
            f"`{spec.id}` in `pipelines/catalogue.py`) and the app or `python -m pipelines "
            f"generate` downloads it on first use")
