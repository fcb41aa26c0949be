"""One image for each of many *different* prompts in a single decoding loop.

`MinDalle.generate_images` draws n images of one prompt: its 2n-row batch is n copies
of the empty prompt, then n copies of the prompt. Nothing in the decoder needs the n
conditional rows to be the same text, so here row n + i holds prompt i:

    text_tokens (2n, 64): rows [:n] the empty prompt, row n + i prompt i

and every step samples one token for each of the n images with `MinDalle`'s own
decoder, cache layout and sampling. Measuring the course model on hundreds of prompts
then costs one 64-step loop per setting instead of hundreds. With a single prompt it
draws exactly the tokens `MinDalle.generate_image_tokens(prompt, seed, 1, ...)` does
(a test checks this).
"""
from __future__ import annotations

import torch

from .encoder import text_attention_mask
from .pipeline import MinDalle, new_attention_state, pack_text_tokens
from .sampling import check_settings


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
    check_settings(temperature, top_k, supercondition_factor)
    config, image_count = model.config, len(prompts)
    packed = [pack_text_tokens(model.tokenizer.tokenize(p), config.text_token_count) for p in prompts]  # n x (2, 64)
    empty_rows = torch.stack([rows[0] for rows in packed])  # (n, 64)
    prompt_rows = torch.stack([rows[1] for rows in packed])  # (n, 64)
    text_tokens = torch.cat([empty_rows, prompt_rows]).to(model.device)  # (2n, 64): unconditional, then conditional
    if model.encoder is None:
        model.init_encoder()
    encoder_state = model.encoder(text_tokens)  # (2n, 64, E)
    attention_mask = text_attention_mask(text_tokens)  # (2n, 1, 1, 64)
    attention_state = new_attention_state(config, image_count, model.attention_state_dtype, model.device)
    image_tokens = torch.full(
        (image_count, config.image_token_count + 1), config.image_start_token, dtype=torch.long, device=model.device
    )  # (n, 1 + tokens): column 0 the start token
    if seed > 0:
        torch.manual_seed(seed)
    if model.decoder is None:
        model.init_decoder()
    encoder_keys_values = model.decoder.encoder_keys_values(encoder_state)
    token_indices = torch.arange(config.image_token_count, device=model.device)
    settings = torch.tensor([temperature, top_k, supercondition_factor], dtype=torch.float32)
    for i in range(config.image_token_count):
        image_tokens[:, i + 1], attention_state = model.decoder.sample_tokens(
            settings,
            attention_mask=attention_mask,
            encoder_state=encoder_state,
            attention_state=attention_state,
            prev_tokens=image_tokens[:, [i]],
            token_index=token_indices[[i]],
            encoder_keys_values=encoder_keys_values,
        )
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
