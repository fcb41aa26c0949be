"""dalle_core.lab.exercises: the checks every exercise cell runs on a learner's answer."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dalle_core.lab.exercises import answer_digest, check, check_answer, cmp, digest


def test_cmp_reports_exact_and_approximate_and_raises_with_the_difference(capsys):
    assert cmp("same", torch.ones(3), torch.ones(3)) is None  # no Out[...] value in a notebook
    assert "exact: True" in capsys.readouterr().out
    cmp("close", torch.ones(3) + 1e-7, torch.ones(3))
    assert "exact: False | approximate: True" in capsys.readouterr().out
    cmp("close", torch.ones(3) + 1e-7, torch.ones(3), show_exact=False)
    assert "exact:" not in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"largest difference 0\.5"):
        cmp("far", torch.ones(3) + 0.5, torch.ones(3))
    with pytest.raises(AssertionError, match=r"your shape \(2,\), expected \(3,\)"):
        cmp("shape", torch.ones(2), torch.ones(3))


def test_unanswered_exercises_say_so_instead_of_failing(capsys):
    cmp("x", ..., torch.ones(3))
    check(..., lambda a: False, "a claim")
    out = capsys.readouterr().out
    assert out.count("not answered yet") == 2


def test_check_prints_the_claim_or_raises_with_the_hint(capsys):
    assert check(3, lambda a: a == 3, "three") is None
    assert capsys.readouterr().out == "ok: three\n"
    with pytest.raises(AssertionError, match=r"not yet: three\. Hint: count again"):
        check(4, lambda a: a == 3, "three", "count again")


def test_digest_fingerprints_integers_only():
    tokens = torch.arange(12).view(3, 4)
    assert digest(tokens) == digest(tokens.clone()) != digest(tokens.view(4, 3))
    assert digest(tokens) != digest(tokens + 1)
    with pytest.raises(TypeError, match="integer"):
        digest(torch.ones(3))


def test_check_answer_compares_fingerprints_not_answers(capsys):
    expected = answer_digest(0.25, decimals=2)
    assert "0.25" not in expected
    check_answer("share", 0.2500001, expected, decimals=2)
    check_answer("share", ..., expected, decimals=2)
    out = capsys.readouterr().out
    assert "share: right" in out and "not answered yet" in out
    with pytest.raises(AssertionError, match=r"share: not yet\. Hint: a quarter"):
        check_answer("share", 0.3, expected, decimals=2, hint="a quarter")
    # one spelling per answer: ints, floats, numpy and tensors; text case and spaces; sequences
    assert answer_digest(3) == answer_digest(3.0) == answer_digest(torch.tensor(3)) == answer_digest(np.int64(3))
    assert answer_digest(" Top  Left ") == answer_digest("top left") != answer_digest("top right")
    pair = answer_digest((1, 2))
    assert pair == answer_digest([1, 2]) == answer_digest(torch.tensor([1, 2])) != answer_digest((2, 1))
    assert answer_digest({"b", "a"}) == answer_digest({"a", "b"})
    assert answer_digest(True) != answer_digest(1)
    with pytest.raises(TypeError, match="an answer must be"):
        answer_digest(object())
