"""The battle table: what every arena function reads.

One row per vote. Required columns: ``model_a``, ``model_b`` and ``outcome`` (one of ``a``,
``b``, ``tie``, ``both_bad``). Optional columns the other steps use:

================  ===========================================================================
column            used by
================  ===========================================================================
``judge_id``      per-judge caps (:mod:`preflab.arena.hygiene`)
``prompt_id``     kept for reference
``is_anonymous``  the non-anonymous-vote filter (Chatbot Arena's ``anony``)
``response_a``    the self-identification filter and style features (assistant text shown)
``response_b``    same, for the second model
``style_*_a/b``   style counts (length, headers, lists, bold; :mod:`preflab.arena.style_control`)
================  ===========================================================================

Three ways in: :func:`normalize_battles` (a table in Chatbot Arena's spelling or ours),
:func:`read_battles` (a JSONL / JSON / Parquet / CSV file of such rows) and
:func:`battles_from_judgments` (preflab's judgment and response record tables).
"""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from preflab.arena.bradley_terry import OUTCOMES
from preflab.errors import FormatError, InputError, NotFoundError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType  # the type of a struct field's dtype

__all__ = [
    "ANONYMOUS_FLAG",
    "ARENA_WINNERS",
    "NON_ANONYMOUS_FLAGS",
    "STYLE_COUNTS",
    "battles_from_judgments",
    "normalize_battles",
    "read_battles",
]

#: Chatbot Arena's ``winner`` spelling → our ``outcome``.
ARENA_WINNERS: dict[str, str] = {
    "model_a": "a",
    "model_b": "b",
    "tie": "tie",
    "tie (bothbad)": "both_bad",
}
#: Judgment flag that marks a blind vote (set by the ``arena`` import format for ``anony``).
ANONYMOUS_FLAG = "anonymous"
#: Judgment flags that mark a vote cast after the model names were shown.
NON_ANONYMOUS_FLAGS: tuple[str, ...] = ("non_anonymous", "not_anonymous", "anony:false")
#: Style count names; the battle table holds ``style_<name>_a`` and ``style_<name>_b``.
STYLE_COUNTS: tuple[str, ...] = ("length", "headers", "lists", "bold")

_RENAMES = {
    "anony": "is_anonymous",
    "anonymous": "is_anonymous",
    "judge": "judge_id",
    "question_id": "prompt_id",
}


def _row_of(path: str | None, index: int) -> int:
    """Return the 1-based line of table row ``index`` (CSV files have a header line)."""
    return index + 2 if path and path.endswith(".csv") else index + 1


def _assistant_text(column: str) -> pl.Expr:
    """Join the assistant turns of a Chatbot Arena ``conversation_a``/``_b`` list."""
    return (
        pl.col(column)
        .list.eval(
            pl.element()
            .filter(pl.element().struct.field("role") == "assistant")
            .struct.field("content")
        )
        .list.join("\n\n")
    )


def _style_count(
    key: str, dtype: PolarsDataType, path: str | None
) -> pl.Expr:
    """Return one style count of ``conv_metadata`` as a float column.

    FastChat's ``preprocess_for_style`` (fastchat/serve/monitor/rating_systems.py) takes a
    count as it is when it is an integer and sums the values when it is a dict (per header
    level or list kind); so do we.

    Raises:
        InputError: the field is neither a number nor a dict of numbers.
    """
    field = pl.col("conv_metadata").struct.field(key)
    if isinstance(dtype, pl.Struct):
        parts = [field.struct.field(f.name).cast(pl.Float64).fill_null(0) for f in dtype.fields]
        return pl.sum_horizontal(parts) if parts else pl.lit(0.0)
    if dtype.is_numeric() or dtype == pl.Null:
        return field.cast(pl.Float64)
    raise InputError(
        f"conv_metadata.{key} is {dtype}; expected an integer count or a dict of counts "
        "(as Chatbot Arena writes them, e.g. {\"h1\": 1, \"h2\": 0})",
        path=path,
        field=f"conv_metadata.{key}",
    )


def _flatten_conv_metadata(df: pl.DataFrame, path: str | None = None) -> pl.DataFrame:
    """Turn Chatbot Arena's ``conv_metadata`` struct into ``style_*`` columns.

    Header, list and bold counts may be integers or dicts of counts (both shapes FastChat's
    style control reads); the token total is a number.
    """
    meta = df.get_column("conv_metadata")
    if not isinstance(meta.dtype, pl.Struct):
        return df
    fields = {f.name: f.dtype for f in meta.dtype.fields}
    exprs: list[pl.Expr] = []
    base = pl.col("conv_metadata").struct
    for side in ("a", "b"):
        if f"sum_assistant_{side}_tokens" in fields:
            exprs.append(
                base.field(f"sum_assistant_{side}_tokens")
                .cast(pl.Float64)
                .alias(f"style_length_{side}")
            )
        for name, key in (
            ("headers", "header_count"),
            ("lists", "list_count"),
            ("bold", "bold_count"),
        ):
            dtype = fields.get(f"{key}_{side}")
            if dtype is not None:
                exprs.append(
                    _style_count(f"{key}_{side}", dtype, path).alias(f"style_{name}_{side}")
                )
    return df.with_columns(exprs) if exprs else df


def normalize_battles(table: pl.DataFrame | pa.Table, *, path: str | None = None) -> pl.DataFrame:
    """Return a battle table in preflab's spelling, checked row by row.

    Accepts our columns or Chatbot Arena's (``winner`` with ``model_a`` / ``model_b`` / ``tie``
    / ``tie (bothbad)``, ``anony``, ``judge``, ``question_id``, ``conversation_a``/``_b``,
    ``conv_metadata``).

    Args:
        table: the battles.
        path: file the table came from, for error messages.

    Returns:
        The battle table (``model_a``, ``model_b``, ``outcome`` and the optional columns).

    Raises:
        InputError: a missing column, an empty model name or an unknown outcome, naming the
            file, line and field.

    >>> import polars as pl
    >>> df = normalize_battles(pl.DataFrame({"model_a": ["x"], "model_b": ["y"],
    ...                                      "winner": ["tie (bothbad)"], "anony": [True]}))
    >>> df.row(0, named=True)
    {'model_a': 'x', 'model_b': 'y', 'is_anonymous': True, 'outcome': 'both_bad'}
    """
    if isinstance(table, pa.Table):
        converted = pl.from_arrow(table)
        assert isinstance(converted, pl.DataFrame)
        table = converted
    df = table
    for column in ("model_a", "model_b"):
        if column not in df.columns:
            raise FormatError(
                f"no {column!r} column (found {df.columns[:12]}); a battle file needs model_a, "
                "model_b and winner (Chatbot Arena) or outcome",
                path=path,
                field=column,
            )
    if "outcome" not in df.columns:
        if "winner" not in df.columns:
            raise FormatError(
                f"no 'winner' or 'outcome' column (found {df.columns[:12]})",
                path=path,
                field="winner",
            )
        winners = df.get_column("winner").cast(pl.String)
        outcome = winners.replace_strict(
            list(ARENA_WINNERS), list(ARENA_WINNERS.values()), default=None
        )
        bad = outcome.is_null()
        if bad.any():
            index = int(bad.arg_true()[0])
            raise InputError(
                f"winner {winners[index]!r} is not one of {list(ARENA_WINNERS)}",
                path=path,
                line=_row_of(path, index),
                field="winner",
                value=winners[index],
            )
        df = df.with_columns(outcome.alias("outcome")).drop("winner")
    else:
        outcomes = df.get_column("outcome").cast(pl.String)
        bad = ~outcomes.is_in(list(OUTCOMES)) | outcomes.is_null()
        if bad.any():
            index = int(bad.arg_true()[0])
            raise InputError(
                f"outcome {outcomes[index]!r} is not one of {list(OUTCOMES)}",
                path=path,
                line=_row_of(path, index),
                field="outcome",
                value=outcomes[index],
            )
    for column in ("model_a", "model_b"):
        names = df.get_column(column).cast(pl.String)
        empty = names.is_null() | (names.str.strip_chars() == "")
        if empty.any():
            index = int(empty.arg_true()[0])
            raise InputError(
                f"{column} is empty; every battle names both models",
                path=path,
                line=_row_of(path, index),
                field=column,
            )
    df = df.rename(
        {old: new for old, new in _RENAMES.items() if old in df.columns and new not in df.columns}
    )
    for side in ("a", "b"):
        conv = f"conversation_{side}"
        if (
            conv in df.columns
            and f"response_{side}" not in df.columns
            and isinstance(df.schema[conv], pl.List)
        ):
            df = df.with_columns(_assistant_text(conv).alias(f"response_{side}"))
    if "conv_metadata" in df.columns:
        df = _flatten_conv_metadata(df, path)
    casts: dict[str, type[pl.DataType]] = {
        "model_a": pl.String,
        "model_b": pl.String,
        "outcome": pl.String,
    }
    if "judge_id" in df.columns:
        casts["judge_id"] = pl.String
    if "prompt_id" in df.columns:
        casts["prompt_id"] = pl.String
    if "is_anonymous" in df.columns:
        casts["is_anonymous"] = pl.Boolean
    drop = [c for c in ("conversation_a", "conversation_b", "conv_metadata") if c in df.columns]
    return df.drop(drop).with_columns([pl.col(c).cast(t) for c, t in casts.items()])


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def read_battles(path: str | Path) -> pl.DataFrame:
    """Return the battle table in a JSONL, JSON (array), Parquet or CSV file (``.gz`` allowed).

    Args:
        path: the file; rows in Chatbot Arena's spelling or ours (see :func:`normalize_battles`).

    Returns:
        The normalized battle table.

    Raises:
        NotFoundError: the file does not exist.
        FormatError: the file cannot be parsed or lacks the battle columns.
        InputError: a bad row (line and field in the error).
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"battle file {str(p)!r} does not exist", path=str(p))
    name = p.name.lower().removesuffix(".gz")
    try:
        if name.endswith(".parquet"):
            df = pl.read_parquet(p)
        elif name.endswith(".csv"):
            df = pl.read_csv(io.BytesIO(_read_bytes(p)), infer_schema_length=10_000)
        elif name.endswith(".json"):
            rows = json.loads(_read_bytes(p))
            if isinstance(rows, dict):  # {"battles": [...]} or a column dict
                rows = rows.get("battles", rows)
            df = pl.DataFrame(rows, infer_schema_length=None)
        elif name.endswith((".jsonl", ".ndjson")):
            df = pl.read_ndjson(io.BytesIO(_read_bytes(p)), infer_schema_length=None)
        else:
            raise FormatError(
                f"cannot tell the format of {p.name!r}: use .jsonl, .json, .parquet or .csv "
                "(optionally .gz)",
                path=str(p),
            )
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, json.JSONDecodeError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(
            f"could not parse the file as {name.rsplit('.', 1)[-1]}: {str(exc).splitlines()[0]}",
            path=str(p),
        ) from exc
    return normalize_battles(df, path=str(p))


def battles_from_judgments(
    judgments: pa.Table | pl.DataFrame, responses: pa.Table | pl.DataFrame
) -> pl.DataFrame:
    """Return the battle table of the pairwise judgments whose responses name their model.

    Each pairwise judgment becomes one battle: ``model_a`` / ``model_b`` are the models of the
    responses in the order shown (``response_ids[0]``, ``[1]``); ``outcome`` is ``tie`` or
    ``both_bad`` when flagged, else ``a`` or ``b`` by the preferred response. Other judgment
    kinds are skipped. ``is_anonymous`` is False for a judgment carrying one of
    :data:`NON_ANONYMOUS_FLAGS`, True for one carrying :data:`ANONYMOUS_FLAG`; for the others it
    is False when some judgment of the table carries :data:`ANONYMOUS_FLAG` (the ``arena``
    import format flags the blind battles only) and unknown (null) otherwise.

    Args:
        judgments: a table with :data:`~preflab.records.JUDGMENT_SCHEMA`'s columns.
        responses: a table with :data:`~preflab.records.RESPONSE_SCHEMA`'s columns.

    Returns:
        Battles with ``judgment_id``, ``judge_id``, ``prompt_id``, ``is_anonymous``,
        ``response_a`` and ``response_b`` besides the required columns.

    Raises:
        InputError: a judged response that is missing from ``responses`` or has no model.
    """
    j = judgments if isinstance(judgments, pl.DataFrame) else pl.from_arrow(judgments)
    r = responses if isinstance(responses, pl.DataFrame) else pl.from_arrow(responses)
    assert isinstance(j, pl.DataFrame) and isinstance(r, pl.DataFrame)
    j = j.filter(pl.col("kind") == "pairwise")
    flags = pl.col("flags") if "flags" in j.columns else pl.lit(None, pl.List(pl.String))
    base = j.select(
        "judgment_id",
        "judge_id",
        "prompt_id",
        pl.col("response_ids").list.get(0).alias("rid_a"),
        pl.col("response_ids").list.get(1).alias("rid_b"),
        pl.col("pairwise").struct.field("preferred").alias("preferred"),
        pl.col("pairwise").struct.field("tie").fill_null(False).alias("tie"),
        pl.col("pairwise").struct.field("both_bad").fill_null(False).alias("both_bad"),
        flags.list.eval(pl.element().is_in(list(NON_ANONYMOUS_FLAGS))).list.any().alias("_named"),
        flags.list.contains(ANONYMOUS_FLAG).alias("_anon"),
    )
    # the arena reader marks anonymous battles positively; once a table uses that flag, a
    # judgment without it was cast with the model names shown
    positive = bool(base.get_column("_anon").fill_null(False).any())
    base = base.with_columns(
        pl.when(pl.col("_named").fill_null(False))
        .then(False)
        .when(pl.col("_anon").fill_null(False))
        .then(True)
        .otherwise(pl.lit(False if positive else None, pl.Boolean))
        .alias("is_anonymous")
    ).drop("_named", "_anon")
    models = r.select("response_id", "model", "content")
    out = base.join(
        models.rename({"response_id": "rid_a", "model": "model_a", "content": "response_a"}),
        on="rid_a",
        how="left",
    ).join(
        models.rename({"response_id": "rid_b", "model": "model_b", "content": "response_b"}),
        on="rid_b",
        how="left",
    )
    for side in ("a", "b"):
        missing = out.get_column(f"model_{side}").is_null()
        if missing.any():
            index = int(missing.arg_true()[0])
            row = out.row(index, named=True)
            raise InputError(
                f"judgment {row['judgment_id']!r} shows response {row[f'rid_{side}']!r}, which "
                "is missing from the responses or has no model; the arena rates models, so every "
                "judged response needs its model",
                field="model",
                value=row[f"rid_{side}"],
            )
    outcome = (
        pl.when(pl.col("both_bad"))
        .then(pl.lit("both_bad"))
        .when(pl.col("tie"))
        .then(pl.lit("tie"))
        .when(pl.col("preferred") == pl.col("rid_a"))
        .then(pl.lit("a"))
        .otherwise(pl.lit("b"))
    )
    return out.select(
        "model_a",
        "model_b",
        outcome.alias("outcome"),
        "judgment_id",
        "judge_id",
        "prompt_id",
        "is_anonymous",
        "response_a",
        "response_b",
    )
