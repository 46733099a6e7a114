"""What precision an exported UNet really is, read from its OpenVINO IR, not from a folder's or
a repo's name: INT8 weights and activations (activation quantizers), INT8 weights only (integer
weight constants decompressed at run time), FP16 or FP32 (the type of its weight constants).

Reads only the IR's XML (a streaming parse, no weights, no OpenVINO): the labels a page shows
for every folder cost a few milliseconds each, the full-size UNet's 12 MB XML about a second."""

from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

# Label -> what the UI and CLI call it. The keys are the catalogue's variant names where one
# matches (pipelines.catalogue.VARIANTS), so a folder's label can be checked against its variant.
LABELS = {
    "int8": "INT8 weights and activations",
    "int8-weights": "INT8 weights only",
    "int4-weights": "INT4 weights only",
    "fp16": "FP16 weights",
    "fp32": "FP32 weights",
}
# Constant element types that hold weights (i32 / i64 constants are shapes and indices).
_WEIGHT_TYPES = {"f32": "fp32", "f16": "fp16", "bf16": "fp16", "i8": "int8-weights",
                 "u8": "int8-weights", "i4": "int4-weights", "u4": "int4-weights",
                 "nf4": "int4-weights"}


def unet_label(folder: Path) -> str:
    """The precision label (a LABELS key) of the UNet in an exported folder (<folder>/unet/).
    Raises OSError or ValueError where its XML is missing or unreadable."""
    return label(Path(folder) / "unet" / "openvino_model.xml")


def label(xml: Path) -> str:
    """The precision label of one IR: "int8" where activations are quantized (FakeQuantize
    layers, as NNCF's post-training quantization and optimum's hybrid mode leave them), else
    after the weight constants' type that holds the most bytes."""
    quantizers, weight_bytes = 0, Counter()
    try:
        for _, element in ElementTree.iterparse(xml, events=("end",)):
            if element.tag != "layer":
                continue
            kind = element.get("type")
            if kind == "FakeQuantize":
                quantizers += 1
            elif kind == "Const":
                data = element.find("data")
                precision = (_WEIGHT_TYPES.get(data.get("element_type", ""))
                             if data is not None else None)
                if precision is not None:
                    weight_bytes[precision] += int(data.get("size", 0))
            element.clear()  # keep memory flat on a 12 MB XML
    except ElementTree.ParseError as e:
        raise ValueError(f"{xml}: not a readable OpenVINO IR ({e})") from e
    if quantizers:
        return "int8"
    if not weight_bytes:
        raise ValueError(f"{xml}: holds no weight constants")
    return weight_bytes.most_common(1)[0][0]


def describe(label_key: str) -> str:
    return LABELS.get(label_key, label_key)
