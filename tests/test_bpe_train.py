"""BPE training: files in min-dalle's format that both tokenizers read identically."""
from __future__ import annotations

import json

import pytest

from dalle_core.course.bpe_train import MERGES_HEADER, WORD_START, save_bpe, train_bpe
from dalle_core.course.data import make_scene
from dalle_core.tokenizer import TextTokenizer

from .oracle import TextTokenizer as MinDalleTokenizer  # restores the thread count and autograd min_dalle changes

CAPTIONS = [make_scene(3, i).caption for i in range(1500)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    vocab, merges = train_bpe(CAPTIONS, vocab_size=400)
    return vocab, merges, save_bpe(vocab, merges, tmp_path_factory.mktemp("bpe"))


def test_special_ids_and_single_characters(files):
    vocab, _, _ = files
    assert [vocab[s] for s in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    for character in WORD_START + "abcxyz0123456789,.!?":
        assert character in vocab


def test_merges_file_format(files):
    _, merges, (_, merges_path) = files
    text = merges_path.read_text(encoding="utf-8")
    assert text.startswith(MERGES_HEADER + "\n") and text.endswith("\n")
    assert text.split("\n")[1:-1] == merges  # how min-dalle reads it
    assert all(len(line.split()) == 2 for line in merges)


def test_training_is_deterministic():
    assert train_bpe(CAPTIONS[:300], vocab_size=300) == train_bpe(CAPTIONS[:300], vocab_size=300)


def test_round_trip_and_agreement_with_min_dalle(files):
    _vocab, _merges, (vocab_path, merges_path) = files
    ours = TextTokenizer.from_files(vocab_path, merges_path)
    with open(vocab_path, encoding="utf-8") as f, open(merges_path, encoding="utf-8") as g:
        oracle = MinDalleTokenizer(json.load(f), g.read().split("\n")[1:-1])
    for caption in CAPTIONS[:300] + ["A Violet STAR, on grey!", "an unseen word: zebra 42"]:
        tokens = ours.tokenize(caption)
        assert tokens == oracle.tokenize(caption)
        assert tokens[0] == 0 and tokens[-1] == 2 and 3 not in tokens  # nothing maps to <unk>
        assert ours.decode(tokens) == " ".join(caption.lower().split())


def test_frequent_words_become_single_tokens(files):
    vocab, _merges, (vocab_path, merges_path) = files
    tokenizer = TextTokenizer.from_files(vocab_path, merges_path)
    assert tokenizer.tokenize("a red circle") == [0, vocab["Ġa"], vocab["Ġred"], vocab["Ġcircle"], 2]


def test_too_small_vocab_is_refused():
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe(CAPTIONS[:10], vocab_size=20)
