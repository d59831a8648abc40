"""Inputs shared by the export tests (tests/cli/test_export_cmd.py, tests/formats/...).

HH-shaped rows written for these tests (HH-RLHF's layout, our own words: no third-party row is
committed), and a small word-level tokenizer trained on a file's lines and saved to a folder,
for the ``tokenized`` export.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

#: An echoing chosen answer (rows 2 and 3 repeat the prompt) and a parroting rejected one.
ECHO_ROWS = [
    {"chosen": "\n\nHuman: How long should I boil an egg for a soft yolk?\n\nAssistant: About six minutes "
               "in water that is already boiling, then cool it under cold water.",
     "rejected": "\n\nHuman: How long should I boil an egg for a soft yolk?\n\nAssistant: Twenty minutes."},
    {"chosen": "\n\nHuman: What are some words that rhyme with orange?\n\nAssistant: What are some words "
               "that rhyme with orange? Almost none: door hinge is the usual near rhyme.",
     "rejected": "\n\nHuman: What are some words that rhyme with orange?\n\nAssistant: Banana."},
    {"chosen": "\n\nHuman: Can you help me plan a trip?\n\nAssistant: Sure, where to?\n\nHuman: I want to "
               "visit Lisbon in the spring.\n\nAssistant: Spring is a fine time: mild weather and fewer crowds.",
     "rejected": "\n\nHuman: Can you help me plan a trip?\n\nAssistant: Sure, where to?\n\nHuman: I want to "
                 "visit Lisbon in the spring.\n\nAssistant: I want to visit Lisbon in the spring."},
]


def save_word_level_tokenizer(texts: Iterable[str], folder: Path, *, vocab_size: int) -> Path:
    """Train a lowercase word-level tokenizer with a chat template on ``texts``; save it to
    ``folder`` (``save_pretrained``) and return ``folder``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(texts, trainers.WordLevelTrainer(
        vocab_size=vocab_size, special_tokens=["[UNK]", "[PAD]", "</s>", "<|user|>", "<|assistant|>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="</s>")
    tok.chat_template = "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    tok.save_pretrained(folder)
    return folder
