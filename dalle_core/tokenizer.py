"""Text to token ids, exactly as min-dalle (and DALL·E Mini's BART tokenizer) does it.

The recipe: emoji become their names, the text is lower-cased and stripped to ASCII,
split on single spaces, and every word is byte-pair encoded starting from
`['Ġ'] + list(word)`, where `'Ġ'` marks the start of a word. BPE repeatedly merges the
adjacent pair with the lowest rank in `merges.txt` until no pair is known.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from math import inf
from pathlib import Path
from typing import Any

import torch
from emoji import demojize

from .config import read_json

WORD_START = chr(ord(" ") + 256)  # 'Ġ': GPT-2's byte-level stand-in for a leading space
BOS, PAD, EOS, UNK = "<s>", "<pad>", "</s>", "<unk>"
PAD_ID = 1  # min-dalle pads with 1 and masks every position holding it


def normalize(text: str) -> str:
    """Emoji to names, lower case, ASCII only: the text the BPE sees (and the BPE trainer learns from)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    text = demojize(text, delimiters=("", ""))
    return text.lower().encode("ascii", errors="ignore").decode()


def read_vocab(path: str | Path) -> dict[str, int]:
    """vocab.json: a JSON object of subword -> id; anything else is an error naming the file (`verify` lists it)."""
    vocab = read_json(path)
    if not (vocab and all(isinstance(i, int) for i in vocab.values())):
        raise ValueError(f"{path} is not a vocabulary (a JSON object of subword -> id)")
    return vocab


def read_merges(path: str | Path) -> list[str]:
    """merges.txt: a '#version' header line, then one pair of subwords a line, in rank order (UTF-8)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file {path} does not exist")
    try:
        merges = [line for line in path.read_text(encoding="utf-8").split("\n")[1:] if line.strip()]
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error})") from None
    if not merges or any(len(line.split()) != 2 for line in merges):
        raise ValueError(f"{path} is not a BPE merges file (a header line, then one pair per line)")
    return merges


class TextTokenizer:
    """min-dalle compatible BPE tokenizer; `tokenize(text, is_verbose=True)` shows every merge."""

    def __init__(self, vocab: dict[str, int], merges: list[str]):
        if not isinstance(vocab, dict):
            raise TypeError(f"vocab must be a dict of subword -> id, got {type(vocab).__name__}")
        missing = [s for s in (BOS, PAD, EOS, UNK) if s not in vocab]
        if missing:
            raise ValueError(f"vocab lacks the special tokens {missing}; is it a DALL·E vocab.json?")
        self.token_from_subword = vocab
        self.subword_from_token = {i: s for s, i in vocab.items()}
        pairs = [tuple(line.split()) for line in merges]
        bad = [line for line, pair in zip(merges, pairs) if len(pair) != 2]
        if bad:
            raise ValueError(f"merges must be lines of two subwords 'a b'; bad line {bad[0]!r}")
        self.rank_from_pair: dict[tuple[str, str], int] = {pair: rank for rank, pair in enumerate(pairs)}

    @classmethod
    def from_files(cls, vocab_path: str | Path, merges_path: str | Path) -> TextTokenizer:
        """Read and check vocab.json and merges.txt (`read_vocab`, `read_merges`)."""
        return cls(read_vocab(vocab_path), read_merges(merges_path))

    def normalize(self, text: str) -> str:
        """Emoji to names, lower case, ASCII only: the text the BPE sees."""
        return normalize(text)

    def tokenize(self, text: str, is_verbose: bool = False) -> list[int]:
        """`[<s>] + ids + [</s>]`, not yet cut to `text_token_count` (see `fit_tokens`)."""
        unk = self.token_from_subword[UNK]
        words = [word for word in self.normalize(text).split(" ") if word]
        ids = [
            self.token_from_subword.get(subword, unk)
            for word in words
            for subword in self.byte_pair_encoding(word, is_verbose)
        ]
        return [self.token_from_subword[BOS]] + ids + [self.token_from_subword[EOS]]

    def unreadable_words(self, text: str) -> list[str]:
        """The words of `text` (split on white space, as written) that give no token the
        vocabulary knows: non-ASCII script, which `normalize` drops ("红色的圆形"), or, with a
        small vocabulary such as the course model's, symbols it never saw."""
        unk = self.token_from_subword[UNK]
        unreadable = []
        for word in text.split():
            subwords = [s for part in self.normalize(word).split(" ") if part for s in self.byte_pair_encoding(part)]
            if all(self.token_from_subword.get(s, unk) == unk for s in subwords):
                unreadable.append(word)
        return unreadable

    def byte_pair_encoding(self, word: str, is_verbose: bool = False) -> list[str]:
        """Merge the lowest-ranked adjacent pair until none of the pairs is in merges.txt."""
        subwords = [WORD_START] + list(word)
        while len(subwords) > 1:
            pairs = list(itertools.pairwise(subwords))
            best = min(pairs, key=lambda pair: self.rank_from_pair.get(pair, inf))
            rank = self.rank_from_pair.get(best)
            if rank is None:
                break
            i = pairs.index(best)  # the leftmost occurrence, as min-dalle merges
            if is_verbose:
                print(f"merge #{rank}: {best[0]!r} + {best[1]!r} in {subwords}")
            subwords = subwords[:i] + [best[0] + best[1]] + subwords[i + 2:]
        if is_verbose:
            print(subwords)
        return subwords

    def decode(self, tokens: list[int]) -> str:
        """Ids back to text (special tokens dropped); lossy only where normalize() was."""
        specials = {self.token_from_subword[s] for s in (BOS, PAD, EOS)}
        text = "".join(self.subword_from_token.get(t, UNK) for t in tokens if t not in specials)
        return text.replace(WORD_START, " ").strip()


def fit_tokens(tokens: list[int], text_token_count: int) -> list[int]:
    """Cut a tokenized prompt to `text_token_count`, keeping `</s>` last.

    min-dalle cuts `tokens[:64]`, which drops `</s>` from an over-long prompt and then
    puts the 64th prompt token into the empty-prompt row. DALL·E Mini was trained on
    rows that always end with `</s>` (the tokenizer truncates, then adds it), so we keep
    it: identical to min-dalle for every prompt of up to 62 BPE tokens.
    """
    if len(tokens) < 2:
        raise ValueError("tokens must start with <s> and end with </s>")
    if len(tokens) <= text_token_count:
        return list(tokens)
    return list(tokens[: text_token_count - 1]) + [tokens[-1]]


def pack_rows(token_lists: Sequence[Sequence[int]], text_token_count: int) -> torch.Tensor:
    """Tokenized texts as encoder rows (n, text_token_count): each cut by `fit_tokens`, then
    padded with PAD_ID, which the encoder masks."""
    rows = torch.full((len(token_lists), text_token_count), PAD_ID, dtype=torch.long)
    for i, tokens in enumerate(token_lists):
        tokens = fit_tokens(tokens, text_token_count)
        rows[i, : len(tokens)] = torch.tensor(tokens)
    return rows


def pack_text_tokens(tokens: list[int], text_token_count: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """(2, text_token_count): row 0 `[<s>, </s>, pad...]` (the empty prompt), row 1 the prompt."""
    tokens = fit_tokens(tokens, text_token_count)
    return pack_rows([[tokens[0], tokens[-1]], tokens], text_token_count).to(device)


def check_prompt(tokenizer: TextTokenizer, text: Any) -> None:
    """Refuse a prompt none of whose words the model can read (see `TextTokenizer.unreadable_words`).

    Refused, not just warned about: such a prompt tokenizes to the empty prompt, so the
    model would spend the whole generation drawing an unconditional picture that ignores
    what was asked, and a warning is easy to miss beside a picture. The empty prompt ""
    itself is allowed: asking for an unconditional picture is a choice."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    words = text.split()
    unreadable = tokenizer.unreadable_words(text)
    if words and len(unreadable) == len(words):
        shown = " ".join(unreadable)
        raise ValueError(
            f"the model can read no word of the prompt {shown!r}: DALL·E Mini reads English "
            "(ASCII letters, digits, punctuation, emoji); this prompt would draw the same as the empty prompt \"\" "
            "(pass \"\" for that)"
        )
