"""``stream_chat`` against a real ``transformers serve`` with a tiny random model, fully offline.

The model is built in the test: a word-level tokenizer trained on four sentences (with a chat
template) and a 2-layer Llama with hidden size 32, saved to a temporary directory that
``transformers serve`` loads as its forced model. No hub access (``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from preflab.generate.endpoints import EndpointConfig
from preflab.generate.streaming import StreamDelta, StreamDone, stream_chat

from .conftest import fakeserver

pytestmark = pytest.mark.slow

_SENTENCES = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "hello there how are you",
    "models answer questions with words",
]
_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _build_tiny_model(out: Path) -> None:
    """Save a random 2-layer Llama (hidden size 32) and its word-level tokenizer to ``out``."""
    tokenizers = pytest.importorskip("tokenizers")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    tok.train_from_iterator(
        _SENTENCES, tokenizers.trainers.WordLevelTrainer(special_tokens=specials)
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>"
    )
    fast.eos_token = "</s>"
    fast.chat_template = _TEMPLATE
    fast.save_pretrained(out)
    ids = {"bos_token_id": fast.bos_token_id, "eos_token_id": fast.eos_token_id}
    ids["pad_token_id"] = fast.pad_token_id
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        **ids,
    )
    model = transformers.LlamaForCausalLM(config)
    model.generation_config = transformers.GenerationConfig(do_sample=False, **ids)
    model.save_pretrained(out)


@pytest.fixture
def served_model(tmp_path: Path) -> Any:
    """Yield ``(base_url, model)`` of ``transformers serve`` running the tiny model."""
    pytest.importorskip("transformers")
    pytest.importorskip("fastapi")
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        exe_found = shutil.which("transformers")
        if exe_found is None:
            pytest.skip("the transformers CLI is not installed")
        exe = Path(exe_found)
    model_dir = tmp_path / "tiny-llama"
    _build_tiny_model(model_dir)
    port = fakeserver.find_free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "hf-home")  # never read or write the user's cache
    log = (tmp_path / "serve.log").open("wb")
    cmd = [str(exe), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--device", "cpu", "--log-level", "warning"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.flush()
                text = (tmp_path / "serve.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"transformers serve exited with {proc.returncode}:\n{text}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("transformers serve did not answer /health within 120 s")
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}/v1", str(model_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_stream_chat_streams_from_transformers_serve(served_model: Any) -> None:
    base_url, model = served_model
    cfg = EndpointConfig(name="tiny", base_url=base_url, model=model, timeout=60.0)

    async def go() -> list[Any]:
        messages = [{"role": "user", "content": "hello there"}]
        params = {"max_tokens": 8, "temperature": 0.0}
        async with contextlib.aclosing(stream_chat(cfg, messages, params)) as events:
            return [ev async for ev in events]

    events = asyncio.run(go())
    done = events[-1]
    deltas = [e.text for e in events if isinstance(e, StreamDelta)]
    assert isinstance(done, StreamDone)
    assert deltas and "".join(deltas) == done.text
    assert done.text.strip()
    assert done.finish_reason in ("length", "stop")
    assert 1 == done.attempts
    assert done.completion_tokens is None or 0 < done.completion_tokens <= 8
    assert 0 < done.ttft_ms <= done.latency_ms
