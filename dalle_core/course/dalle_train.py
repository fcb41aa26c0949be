"""Training the course model's transformer (DalleBartEncoder + DalleBartDecoder) by teacher forcing.

One example is a caption and the T = image_token_count image tokens (256: a 16x16 grid) the
trained VQGAN gives its picture:

    text_tokens  (B, 64)  [<s>, caption ids..., </s>, <pad>...]
    prev_tokens  (B, T)   [start, code_0, ..., code_T-2]            start = image_vocab_count, the extra row
    targets      (B, T)   [code_0, ..., code_T-1]

The decoder sees every image token at once under a causal mask and is scored on
predicting each next one (cross-entropy over the `image_code_count` real codes). This
is exactly the distribution `sample_tokens` later draws from one token at a time.

Super-conditioning needs an *unconditional* prediction too: at generation the
empty-prompt row gives `uncond` and the sampler uses `uncond + s * (cond - uncond)`.
So a fifth of the pictures in every batch appear a second time with the empty prompt
`[<s>, </s>, <pad>...]` ("paired" dropout: both branches learn from the same pictures
at the same step, so their predictions differ by the caption, not by which batches
each happened to see).

Why the unconditional rows get label smoothing (0.3) and the captioned rows none:
with s = 16 a token's sampling weight is p_cond^16 / p_uncond^15, so a code that both
branches consider nearly impossible wins whenever p_cond happens to be a little larger
than p_uncond -- and in a small model the log-probabilities of rare codes are noisy by
about a nat: without the smoothing, s = 16 draws confetti of random codes (50 steps of
fine-tuning the shipped model without it do so: notebook 07, docs/course-model.md).
Smoothing the unconditional targets keeps its rare-code probabilities at the floor
0.3 / image_code_count, above where the conditional branch puts them, so the factor pushes
rare codes *down*; for the codes a picture really uses it changes little. At s = 1 the
unconditional row is not used at all.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..config import DalleConfig
from ..decoder import DalleBartDecoder
from ..encoder import DalleBartEncoder, text_attention_mask
from ..tokenizer import PAD_ID, TextTokenizer, pack_rows
from ..trace import progress_bar
from .schedule import set_learning_rate

EMPTY_PROMPT = (0, 2)  # [<s>, </s>]: the unconditional row


def course_dalle_config(text_vocab_count: int) -> DalleConfig:
    """The course transformer (sizes in `DalleConfig.tiny()`) with the vocabulary its BPE learned."""
    return DalleConfig.tiny().replace(text_vocab_count=text_vocab_count)


def pack_text(tokenizer: TextTokenizer, captions: list[str], text_token_count: int) -> torch.Tensor:
    """Captions -> text_tokens (n, text_token_count): `[<s>] + ids + [</s>]`, padded with 1."""
    return pack_rows([tokenizer.tokenize(caption) for caption in captions], text_token_count)


def drop_captions(text_tokens: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Replace a random `share` of the rows by the empty prompt `[<s>, </s>, <pad>...]`."""
    is_dropped = torch.rand(text_tokens.shape[0], generator=generator) < share  # (B,)
    if text_tokens.shape[0] == 0:  # a batch too small to repeat any row (round(B * caption_drop) = 0)
        return text_tokens
    empty = torch.full_like(text_tokens[0], PAD_ID)
    empty[: len(EMPTY_PROMPT)] = torch.tensor(EMPTY_PROMPT)
    return torch.where(is_dropped[:, None], empty[None, :], text_tokens)


def trim_padding(text_tokens: torch.Tensor) -> torch.Tensor:
    """Cut columns that are padding in every row: (B, 64) -> (B, longest caption).

    Exact, not an approximation: padding is masked out as a key everywhere, so the
    real tokens' `encoder_state` and the decoder's cross-attention are unchanged; it
    only saves the encoder's work on positions that every row pads.
    """
    longest = int((text_tokens != PAD_ID).sum(1).max())
    return text_tokens[:, :longest]


def teacher_forcing_loss(
    encoder: DalleBartEncoder, decoder: DalleBartDecoder, text_tokens: torch.Tensor, image_tokens: torch.Tensor,
    label_smoothing: float = 0.0, unconditional_smoothing: float | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of predicting each image token from the caption and the tokens before it.

    Label smoothing mixes the one-hot target with a uniform share `label_smoothing`;
    rows holding the empty prompt use `unconditional_smoothing` instead, if given.
    """
    config = decoder.config
    batch_count, token_count = image_tokens.shape
    encoder_state = encoder(text_tokens)  # (B, T_text, E)
    attention_mask = text_attention_mask(text_tokens)  # (B, 1, 1, T_text)
    device = image_tokens.device
    start = torch.full((batch_count, 1), config.image_start_token, dtype=torch.long, device=device)
    prev_tokens = torch.cat([start, image_tokens[:, :-1]], dim=1)  # (B, T): shifted right by one
    token_index = torch.arange(token_count, device=device)  # (T,)
    logits = decoder.decode(encoder_state, attention_mask, prev_tokens, token_index)  # (B, T, V + 1)
    logits = logits[:, :, : config.image_code_count]  # (B, T, codes): the start row is never a target
    log_probs = F.log_softmax(logits.float(), dim=-1)  # (B, T, codes)
    nll = -log_probs.gather(-1, image_tokens[..., None])[..., 0]  # (B, T): -log p(target)
    uniform = -log_probs.mean(-1)  # (B, T): cross-entropy against the uniform distribution
    smoothing = torch.full((batch_count, 1), label_smoothing, device=device)  # (B, 1)
    if unconditional_smoothing is not None:
        is_empty = (text_tokens != PAD_ID).sum(1, keepdim=True) == len(EMPTY_PROMPT)  # (B, 1)
        smoothing = torch.where(is_empty, unconditional_smoothing, smoothing)
    return ((1 - smoothing) * nll + smoothing * uniform).mean()


@dataclass
class DalleHistory:
    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)


@torch.enable_grad()  # even if something (min_dalle's import does) switched gradients off
def train_dalle(
    config: DalleConfig,
    text_tokens: torch.Tensor,
    image_tokens: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    weight_decay: float = 0.05,
    caption_drop: float = 0.2,
    label_smoothing: float = 0.0,
    unconditional_smoothing: float | None = 0.3,
    paired_drop: bool = True,
    seed: int = 0,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    validate_every: int = 0,
    on_validate: Callable[[int, DalleBartEncoder, DalleBartDecoder], None] | None = None,
    progress: bool = True,
    device: str | torch.device = "cpu",
    start_from: tuple[DalleBartEncoder, DalleBartDecoder] | None = None,
) -> tuple[DalleBartEncoder, DalleBartDecoder, DalleHistory]:
    """AdamW with warm-up and cosine decay over random batches of (text_tokens, image_tokens).

    `device="cuda"` trains on a GPU for quick searches of settings; batches are still drawn
    by the CPU generator, so the examples seen are the CPU run's. The shipped files come
    from the CPU (`python -m dalle_core train`). `start_from` fine-tunes copies of trained
    modules (their sizes must be `config`'s) instead of fresh ones; the originals are untouched.
    """

    if text_tokens.shape[0] != image_tokens.shape[0]:
        raise ValueError(f"{text_tokens.shape[0]} captions but {image_tokens.shape[0]} token rows")
    if image_tokens.shape[1] != config.image_token_count:
        raise ValueError(
            f"image_tokens have {image_tokens.shape[1]} tokens, the config says {config.image_token_count}"
        )
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    if start_from is None:
        encoder, decoder = DalleBartEncoder(config).to(device), DalleBartDecoder(config).to(device)
    else:
        encoder, decoder = (copy.deepcopy(module).float().to(device) for module in start_from)
        if encoder.config != config or decoder.config != config:
            raise ValueError("start_from's modules have other sizes than `config`; pass their own config")
    named = list(encoder.named_parameters()) + list(decoder.named_parameters())
    parameters = [p for _, p in named]
    # Weight decay on the projection matrices only, not on embeddings or layer norms.
    is_decayed = [p.dim() == 2 and "embed_" not in name for name, p in named]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p, d in zip(parameters, is_decayed) if d], "weight_decay": weight_decay},
            {"params": [p for p, d in zip(parameters, is_decayed) if not d], "weight_decay": 0.0},
        ],
        lr=learning_rate,
        betas=(0.9, 0.98),
    )
    history = DalleHistory()
    encoder.train(), decoder.train()
    bar = progress_bar(range(steps), "dalle", progress)
    for step in bar:
        rows = torch.randint(text_tokens.shape[0], (batch_size,), generator=generator)
        if paired_drop:
            # the same pictures once with and once without their caption, in one batch
            twins = rows[: round(batch_size * caption_drop)]
            batch_text = torch.cat([text_tokens[rows], drop_captions(text_tokens[twins], 1.0, generator)])
            rows = torch.cat([rows, twins])
        else:
            batch_text = drop_captions(text_tokens[rows], caption_drop, generator)
        batch_text = trim_padding(batch_text).to(device)
        set_learning_rate(optimizer, step, steps, learning_rate, max_warmup=200)
        loss = teacher_forcing_loss(
            encoder, decoder, batch_text, image_tokens[rows].to(device), label_smoothing, unconditional_smoothing
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        history.steps.append(step)
        history.loss.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        is_last = step == steps - 1
        if validate_every and (step % validate_every == validate_every - 1 or is_last):
            if validation is not None:
                history.validation.append((step, validation_loss(encoder, decoder, *validation)))
                bar.write(f"step {step + 1}: validation loss {history.validation[-1][1]:.3f}")
            if on_validate is not None:
                on_validate(step, encoder, decoder)
            encoder.train(), decoder.train()
    encoder.eval(), decoder.eval()
    return encoder, decoder, history


@torch.no_grad()
def validation_loss(
    encoder: DalleBartEncoder,
    decoder: DalleBartDecoder,
    text_tokens: torch.Tensor,
    image_tokens: torch.Tensor,
    batch_size: int = 256,
) -> float:
    """Mean teacher-forcing cross-entropy (nats per image token) on held-out examples."""
    encoder.eval(), decoder.eval()
    total = 0.0
    for start in range(0, text_tokens.shape[0], batch_size):
        device = next(decoder.parameters()).device
        text = trim_padding(text_tokens[start : start + batch_size]).to(device)
        images = image_tokens[start : start + batch_size].to(device)
        total += teacher_forcing_loss(encoder, decoder, text, images).item() * text.shape[0]
    return total / max(text_tokens.shape[0], 1)
