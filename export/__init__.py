"""Making models servable: the export package's index. The only package that imports
torch-heavy export code (lazily, inside the functions).

- model: a catalogue model or autoencoder exported into the models folder (export_model,
  export_autoencoder), INT8 included
- convert, quantize, split, compress, taesd, lora: the optimum-intel export, NNCF INT8
  quantization (split for small machines), weight compression, the Tiny Autoencoder, LoRA fusing
- user: the user's own models (`export add` / `remove`); standins, tiny: the offline stand-ins
- shapes: the captioned shapes a trained stand-in is to learn, and the judge of what an image
  shows
- hub: `export push`; manifest: what each exported folder records
- __main__: the `python -m export` commands"""

from export.model import export_autoencoder, export_model

__all__ = ["export_autoencoder", "export_model"]
