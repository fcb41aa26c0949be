"""Training byte-pair merges on captions, saved in min-dalle's vocab.json / merges.txt format.

BPE starts from single characters and, again and again, glues together the adjacent
pair of symbols that occurs most often in the corpus; the list of glued pairs, in the
order they were learnt, is `merges.txt`. The tokenizer replays that list: in a word it
always merges the pair learnt earliest (lowest rank), which reproduces the training
segmentation of every word the trainer saw.

Words are prepared by the tokenizer's own `dalle_core.tokenizer.normalize`
(emoji names, lower case, ASCII, split on single spaces) and start from
`['Ġ'] + list(word)`, so the files load unchanged into min-dalle's tokenizer.
"""
from __future__ import annotations

import itertools
import json
import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from ..tokenizer import BOS, EOS, PAD, UNK, WORD_START, normalize
from ..weights import atomic_write

SPECIAL_TOKENS = (BOS, PAD, EOS, UNK)  # ids 0, 1, 2, 3 as in DALL·E's vocab
MERGES_HEADER = "#version: 0.2"
# Every character a lower-cased ASCII prompt can contain gets an id, so no prompt
# (even one full of words never seen in training) maps to <unk>.
BASE_CHARACTERS = (WORD_START,) + tuple(
    sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
)


def count_words(texts: Iterable[str]) -> Counter[str]:
    """How often each space-separated word occurs."""
    return Counter(word for text in texts for word in normalize(text).split(" ") if word)


def _pair_counts(words: dict[tuple[str, ...], int]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for symbols, n in words.items():
        for pair in itertools.pairwise(symbols):
            counts[pair] += n
    return counts


def _merge_word(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """Replace every non-overlapping occurrence of `pair`, left to right, by its join."""
    out: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def train_bpe(
    texts: Iterable[str], vocab_size: int = 512, min_frequency: int = 2, is_verbose: bool = False
) -> tuple[dict[str, int], list[str]]:
    """Learn merges from `texts`; returns (vocab: subword -> id, merges: ["a b", ...]).

    Stops at `vocab_size` entries, or when no pair occurs `min_frequency` times (on a
    small caption corpus that is when every frequent word has become one symbol).
    Ties between equally frequent pairs go to the alphabetically first, so the result
    depends on the texts alone.
    """
    vocab: dict[str, int] = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    word_counts = count_words(texts)
    characters = set(BASE_CHARACTERS) | {c for word in word_counts for c in word}
    for c in sorted(characters, key=lambda c: (c != WORD_START, c)):
        vocab.setdefault(c, len(vocab))
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size {vocab_size} is smaller than the {len(vocab)} special tokens and "
            "characters every vocab needs; ask for a larger vocab_size"
        )

    words = {(WORD_START,) + tuple(word): n for word, n in word_counts.items()}
    merges: list[str] = []
    while len(vocab) < vocab_size:
        counts = _pair_counts(words)
        if not counts:
            break
        pair, n = min(counts.items(), key=lambda item: (-item[1], item[0]))
        if n < min_frequency:
            break
        merges.append(f"{pair[0]} {pair[1]}")
        vocab.setdefault(pair[0] + pair[1], len(vocab))
        if is_verbose:
            print(f"merge #{len(merges) - 1}: {pair[0]!r} + {pair[1]!r} ({n} times)")
        words = {_merge_word(symbols, pair): n for symbols, n in words.items()}
    return vocab, merges


def save_bpe(vocab: dict[str, int], merges: list[str], out_dir: str | Path) -> tuple[Path, Path]:
    """Write vocab.json and merges.txt (UTF-8, header line, trailing newline) into `out_dir`.

    min-dalle reads merges with `f.read().split("\\n")[1:-1]`: the header is skipped and
    the final newline must be there, or the last merge is lost.
    """
    out = Path(out_dir)
    vocab_path, merges_path = out / "vocab.json", out / "merges.txt"  # atomic_write makes the folder
    with atomic_write(vocab_path) as partial, open(partial, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with atomic_write(merges_path) as partial, open(partial, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join([MERGES_HEADER] + merges) + "\n")
    return vocab_path, merges_path
