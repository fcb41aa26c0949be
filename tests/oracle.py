"""min-dalle 0.4.11, the test oracle, imported without its side effects on the session.

Importing `min_dalle` turns autograd off for the whole process and contacts the network
on construction; tests that train need autograd, and tests never touch the network.
"""
from __future__ import annotations

import torch

grad_was_enabled = torch.is_grad_enabled()
threads = torch.get_num_threads()
import min_dalle.min_dalle as reference  # noqa: E402
from min_dalle.models import DalleBartDecoder, DalleBartEncoder, VQGanDetokenizer  # noqa: E402,F401
from min_dalle.text_tokenizer import TextTokenizer  # noqa: E402,F401

torch.set_grad_enabled(grad_was_enabled)
torch.set_num_threads(threads)
MinDalle = reference.MinDalle


def encoder(config, device: str = "cpu") -> DalleBartEncoder:
    return DalleBartEncoder(
        layer_count=config.layer_count, embed_count=config.embed_count,
        attention_head_count=config.attention_head_count, text_vocab_count=config.text_vocab_count,
        text_token_count=config.text_token_count, glu_embed_count=config.glu_embed_count, device=device,
    ).eval()


def decoder(config, device: str = "cpu") -> DalleBartDecoder:
    return DalleBartDecoder(
        image_vocab_count=config.image_vocab_count, embed_count=config.embed_count,
        attention_head_count=config.attention_head_count, glu_embed_count=config.glu_embed_count,
        layer_count=config.layer_count, device=device,
    ).eval()
