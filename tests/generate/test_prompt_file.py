"""Prompt files for jobs: accepted shapes and errors that name file, line and field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from preflab.errors import InputError
from preflab.generate.prompt_file import read_prompt_file
from preflab.generate.verifiers import Constraint


def test_reads_messages_prompt_reference_and_ifeval_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl.gz"
    rows = [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ]
        },
        {"prompt": "What is 6*7?", "reference": 42},
        {
            "prompt": "Describe Kyoto.",
            "instruction_id_list": ["punctuation:no_comma", "keywords:existence"],
            "kwargs": [{}, {"keywords": ["temple"], "relation": None}],
        },
    ]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n\n")
    a, b, c = read_prompt_file(path)
    assert [m.role for m in a.messages] == ["system", "user"] and a.source == "p.jsonl.gz"
    assert b.reference == "42"
    assert [Constraint.from_json(x) for x in c.constraints] == [
        Constraint("punctuation:no_comma", {}),
        Constraint("keywords:existence", {"keywords": ["temple"]}),
    ]


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"prompt": ""}', "prompt"),
        ('{"messages": "hi"}', "messages"),
        ('{"messages": [{"role": "assistant", "content": "x"}]}', "messages"),
        ('{"prompt": "x", "instruction_id_list": ["a"], "kwargs": [{}, {}]}', "kwargs"),
        ("not json", None),
    ],
)
def test_bad_line_names_file_line_and_field(tmp_path: Path, line: str, field: str | None) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(InputError) as err:
        read_prompt_file(path)
    assert (err.value.path, err.value.line) == (str(path), 2)
    assert err.value.field == field or (field and err.value.field.startswith(field))
