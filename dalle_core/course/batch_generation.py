"""One image for each of many *different* prompts in a single decoding loop.

`MinDalle.generate_images` draws n images of one prompt: its 2n-row batch is n copies
of the empty prompt, then n copies of the prompt. Nothing in the decoder needs the n
conditional rows to be the same text, so here row n + i holds prompt i:

    text_tokens (2n, 64): rows [:n] the empty prompt, row n + i prompt i

and every step samples one token for each of the n images with `MinDalle`'s own
decoder, cache layout and sampling. Measuring the course model on hundreds of prompts
then costs one decoding loop (image_token_count steps) per setting instead of hundreds. With a single prompt it
draws exactly the tokens `MinDalle.generate_image_tokens(prompt, seed, 1, ...)` does
(a test checks this).
"""
from __future__ import annotations

import torch

from ..pipeline import MinDalle
from ..sampling import check_settings
from ..tokenizer import pack_rows


@torch.inference_mode()
def generate_prompt_tokens(
    model: MinDalle,
    prompts: list[str],
    seed: int = -1,
    temperature: float = 1.0,
    top_k: int = 256,
    supercondition_factor: float = 16.0,
) -> torch.Tensor:
    """image_tokens (n, image_token_count): one image per prompt, all sampled together."""
    if not prompts:
        raise ValueError("prompts is empty; give at least one caption")
    check_settings(temperature, top_k, supercondition_factor)  # before any work
    tokens = [model.tokenizer.tokenize(p) for p in prompts]
    empty = [[t[0], t[-1]] for t in tokens]  # [<s>, </s>]: the empty prompt
    text_tokens = pack_rows(empty + tokens, model.config.text_token_count)  # (2n, 64): unconditional, then conditional
    text_tokens = text_tokens.to(model.device)
    if model.encoder is None:
        model.init_encoder()
    encoder_state = model.encoder(text_tokens)  # (2n, 64, E)
    stream = model.sample_image_tokens(text_tokens, encoder_state, (temperature, top_k, supercondition_factor), seed)
    *_, image_tokens = stream  # (n, 1 + tokens): column 0 the start token
    return image_tokens[:, 1:].clone()  # (n, image_token_count)


@torch.inference_mode()
def decode_images(model: MinDalle, image_tokens: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """image_tokens (n, h*w) -> pixels (n, H, W, 3), floats 0..255."""
    if model.detokenizer is None:
        model.init_detokenizer()
    chunks = [
        model.detokenizer.decode_images(model.drawable_tokens(image_tokens[i: i + batch_size]))
        for i in range(0, image_tokens.shape[0], batch_size)
    ]
    return torch.cat(chunks)


def generate_prompt_images(model: MinDalle, prompts: list[str], seed: int = -1, **settings: float) -> torch.Tensor:
    """One image per prompt: (n, H, W, 3) floats 0..255. `settings`: temperature, top_k, supercondition_factor."""
    return decode_images(model, generate_prompt_tokens(model, prompts, seed, **settings))
