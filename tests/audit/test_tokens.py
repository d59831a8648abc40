"""Token lengths from a real tokenizer (``--tokenizer``), built locally: no hub download.

The tokenizer is a byte-level BPE trained in the test on a few HH-RLHF sentences, saved both as
a bare ``tokenizer.json`` and as a ``save_pretrained`` folder. The audit's token counts must be
the tokenizer's own ``encode`` counts (special tokens not added).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from preflab.audit.bias import TOKEN_PATTERN, length_bias
from preflab.audit.tokens import load_tokenizer
from preflab.errors import DependencyError, InputError, NotFoundError

from .test_audit_cmd import run_cli


@pytest.fixture(scope="module")
def bpe(hh_pairs: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, Path]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<eos>"])
    tok.train_from_iterator(hh_pairs["chosen"].head(20).to_list(), trainer)
    folder = tmp_path_factory.mktemp("tok")
    file = folder / "bare.json"
    tok.save(str(file))
    import transformers

    transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>").save_pretrained(folder / "hf")
    return tok, file, folder / "hf"


def _own_counts(tok: Any, texts: list[str]) -> list[int]:
    return [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_counts_are_the_tokenizers_own(bpe: tuple[Any, Path, Path], hh_pairs: pl.DataFrame, kind: str) -> None:
    tok, file, folder = bpe
    counter = load_tokenizer(file if kind == "file" else folder)
    texts = hh_pairs["chosen"].head(50).to_list() + ["", "é 😀 <eos>"]
    assert counter.count(texts) == _own_counts(tok, texts)
    res = length_bias(hh_pairs, tokenizer=counter)
    assert res["values"]["chosen_tokens"] == _own_counts(tok, hh_pairs["chosen"].to_list())
    assert res["values"]["rejected_tokens"] == _own_counts(tok, hh_pairs["rejected"].to_list())
    assert res["tokens"]["unit"] == f"tokenizer {file if kind == 'file' else folder}"
    regex = length_bias(hh_pairs)
    assert regex["tokens"]["unit"] == f"regex {TOKEN_PATTERN}"
    assert regex["values"]["chosen_tokens"] != res["values"]["chosen_tokens"]  # a real difference


def test_cli_token_lengths_come_from_the_tokenizer(bpe: tuple[Any, Path, Path], hh_sample: Path,
                                                   hh_pairs: pl.DataFrame) -> None:
    tok, _, folder = bpe
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--tokenizer", str(folder), "--json", "--resamples", "0")
    assert 0 == proc.returncode, proc.stderr
    tokens = json.loads(proc.stdout)["sections"]["length"]["tokens"]
    c = np.array(_own_counts(tok, hh_pairs["chosen"].to_list()))
    r = np.array(_own_counts(tok, hh_pairs["rejected"].to_list()))
    assert tokens["unit"] == f"tokenizer {folder}"
    assert (tokens["chosen_longer"], tokens["chosen_shorter"], tokens["equal"]) == (
        int((c > r).sum()), int((c < r).sum()), int((c == r).sum()))
    assert tokens["chosen_mean"] == pytest.approx(c.mean(), abs=1e-9)
    assert tokens["rejected_median"] == float(np.median(r))


def test_missing_and_broken_tokenizers_are_clear_errors(tmp_path: Path, hh_sample: Path) -> None:
    with pytest.raises(NotFoundError) as err:
        load_tokenizer(tmp_path / "nope")
    assert err.value.field == "tokenizer"
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    with pytest.raises(InputError, match="not a Hugging Face tokenizer.json") as err2:
        load_tokenizer(bad)
    assert err2.value.path == str(bad)
    with pytest.raises(InputError, match="no Hugging Face tokenizer"):
        load_tokenizer(tmp_path)  # an empty folder
    proc = run_cli("audit", "hh-rlhf", str(hh_sample), "--tokenizer", str(tmp_path / "nope"))
    assert proc.returncode == 1 and "no tokenizer at" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_library_names_the_extra(bpe: tuple[Any, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    _, file, folder = bpe
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "transformers", None)
    for path in (file, folder):
        with pytest.raises(DependencyError, match=r"pip install 'preflab\[trl\]'"):
            load_tokenizer(path)
