"""README.md's front matter makes the repository a working Gradio Space."""

import re
from pathlib import Path

import yaml

from pipelines import catalogue

ROOT = Path(__file__).resolve().parents[2]


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "the front matter must open the file"
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_front_matter_matches_the_app_and_its_pins():
    space = front_matter()
    gradio_pin = re.search(r"^gradio(\[mcp\])?==(\S+)", (ROOT / "requirements.txt").read_text(),
                           re.M)
    assert space["sdk"] == "gradio" and space["sdk_version"] == gradio_pin.group(2)
    assert space["python_version"] == "3.11"  # a string: YAML would read 3.10 as 3.1
    assert (ROOT / space["app_file"]).is_file()
    assert space["suggested_hardware"] == "cpu-upgrade"
    assert {"title", "emoji", "colorFrom", "colorTo"} <= set(space)


def test_the_space_preloads_every_pre_exported_repo_of_the_catalogue():
    space = front_matter()
    assert space["preload_from_hub"] == catalogue.hub_repos()
    sources = [spec.source for spec in catalogue.MODELS.values() if spec.source]
    sources += [ae.source for ae in catalogue.AUTOENCODERS.values() if ae.source]
    sources += [spec.lora for spec in catalogue.MODELS.values()
                if spec.lora not in (None, catalogue.LOCAL_LORA)]
    assert set(space["models"]) == set(sources) | set(catalogue.hub_repos()), \
        "README.md's front matter `models:` lists every Hub repo the catalogue uses"

