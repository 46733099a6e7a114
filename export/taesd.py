"""The Tiny Autoencoder (TAESD-XL, diffusers' AutoencoderTiny) as OpenVINO vae_decoder/ and
vae_encoder/ folders in optimum-intel's layout, shared by every SDXL-family model.

Written by hand (with ov.convert_model): optimum-intel has no TAESD export. Both halves are
exported, and replace both of a pipeline's VAE halves: TAESD latents are unscaled
(scaling_factor 1.0), so a TAESD encoder beside the full decoder would scale latents twice.
The input and output names are the ones optimum-intel's OVModelVaeDecoder/Encoder and
openvino.genai look for."""

from pathlib import Path

import openvino as ov

LATENT_CHANNELS = 4
DECODER = ("vae_decoder", "latent_sample", "sample")  # folder, input name, output name
ENCODER = ("vae_encoder", "sample", "latent_sample")


def tiny_autoencoder():
    """A small AutoencoderTiny with random weights (seeded), for the tiny stand-in."""
    import torch
    from diffusers import AutoencoderTiny

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8),
                               decoder_block_out_channels=(8, 8, 8, 8),
                               num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1))


def load_autoencoder(source: str | None):
    """AutoencoderTiny from a Hub repo or a local folder; None: the tiny stand-in."""
    if source is None:
        return tiny_autoencoder()
    from diffusers import AutoencoderTiny

    return AutoencoderTiny.from_pretrained(source)


def export_autoencoder(autoencoder, out: Path) -> Path:
    """Convert both halves to IR with FP16 weights, dynamic batch and spatial size. The torch
    halves already map images from and to [-1, 1] and clamp latents, as AutoencoderTiny's
    encode/decode do."""
    import torch

    autoencoder = autoencoder.eval().float()
    halves = ((DECODER, autoencoder.decoder, torch.randn(1, LATENT_CHANNELS, 64, 64)),
              (ENCODER, autoencoder.encoder, torch.rand(1, 3, 512, 512) * 2 - 1))
    for (folder, input_name, output_name), module, example in halves:
        with torch.no_grad():
            model = ov.convert_model(module, example_input=example,
                                     input=[[-1, example.shape[1], -1, -1]])
        model.inputs[0].get_tensor().set_names({input_name})
        model.outputs[0].get_tensor().set_names({output_name})
        (out / folder).mkdir(parents=True, exist_ok=True)
        ov.save_model(model, out / folder / "openvino_model.xml")  # compresses weights to FP16
        autoencoder.save_config(out / folder)  # config.json: scaling_factor 1.0
    return out


def quantize_autoencoder(fp16: Path, out: Path, latents: list, images: list) -> dict:
    """INT8 (weights and activations, NNCF post-training quantization) of both halves of the
    FP16 TAESD in `fp16`, written to `out`: the decoder calibrated on `latents` (what the UNet
    hands it), the encoder on `images` (NCHW in [-1, 1]). Returns the manifest details."""
    import shutil

    import nncf

    calibration = {DECODER[0]: latents, ENCODER[0]: images}
    for folder, _, _ in (DECODER, ENCODER):
        model = ov.Core().read_model(fp16 / folder / "openvino_model.xml")
        samples = calibration[folder]
        quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples))
        (out / folder).mkdir(parents=True, exist_ok=True)
        ov.save_model(quantized, out / folder / "openvino_model.xml")
        shutil.copy2(fp16 / folder / "config.json", out / folder / "config.json")
    return {"quantization": {"method": "full", "samples": {"decoder latents": len(latents),
                                                           "encoder images": len(images)},
                             "model_type": "CNN (NNCF default)"}}


def decode(fp16: Path, latents: list) -> list:
    """Images (NCHW in [-1, 1]) decoded from `latents` by the FP16 TAESD decoder in `fp16`."""
    decoder = ov.Core().compile_model(fp16 / DECODER[0] / "openvino_model.xml", "CPU")
    return [decoder(latent)[0] for latent in latents]


def example_images(folder: Path, size: int) -> list:
    """The images in `folder`, center-cropped to size², as the encoder sees them (NCHW, [-1, 1])."""
    import numpy as np
    from PIL import Image, ImageOps

    images = []
    for path in sorted(folder.glob("*.png")) + sorted(folder.glob("*.jpg")):
        image = ImageOps.fit(Image.open(path).convert("RGB"), (size, size))
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[None] / 127.5 - 1
        images.append(pixels)
    return images
