"""Shared fixtures: the real bundled models, and tiny models saved as real Hugging Face folders."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

PIPELINE = "tests/test_pipeline.py"
"""Scheduled first: under pytest-xdist (``make test``: ``-n 2 --dist loadscope
--no-loadscope-reorder``) its module, about half of the suite's time, starts at once on one worker
while the other worker takes the remaining modules in order; the first worker joins in once the
pipeline is nearly done."""


def pytest_configure(config):
    """One fresh distchar cache (GGUF files dequantised once) for the whole run, shared by the
    pytest-xdist workers and the pipeline's subprocesses, which inherit the variable. Under
    several workers, one thread of arithmetic per process (workers, stages, kernels): two
    processes of two threads each on 2 cores made the suite slower than one process. No progress
    bars (distchar.progress): the pipeline's subprocesses inherit that too."""
    os.environ.setdefault("DISTCHAR_QUIET", "1")
    if "DISTCHAR_CACHE" not in os.environ:
        config._distchar_cache = tempfile.mkdtemp(prefix="distchar-cache-")
        os.environ["DISTCHAR_CACHE"] = config._distchar_cache
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.nodeid.split("::")[0] != PIPELINE)


def pytest_unconfigure(config):
    if getattr(config, "_distchar_cache", None):
        shutil.rmtree(config._distchar_cache, ignore_errors=True)
        del os.environ["DISTCHAR_CACHE"]


def save_tiny_model(folder: Path, kind: str) -> Path:
    """A randomly initialised model of ``kind`` (llama, gpt2), saved with save_pretrained."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if kind == "llama":
        config = LlamaConfig(
            vocab_size=128, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
            num_attention_heads=4, num_key_value_heads=2,
        )  # fmt: skip
        model = LlamaForCausalLM(config)
    elif kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    else:
        raise ValueError(kind)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"), "gpt2")


@pytest.fixture
def nan_model(tmp_path, tiny_llama) -> Path:
    """The tiny Llama with NaN and Inf written into two of its projection matrices."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "nan-llama"
    shutil.copytree(tiny_llama, folder)
    tensors = load_file(folder / "model.safetensors")
    tensors["model.layers.1.self_attn.v_proj.weight"][0, :3] = float("nan")
    tensors["model.layers.2.mlp.up_proj.weight"][1, 1] = float("inf")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from distchar.models.sources import resolve_source

    return resolve_source("bundled:smollm2-135m-instruct").files[0]


@pytest.fixture
def truncated_gguf(tmp_path, smollm2_gguf) -> Path:
    """The first 60% of the bundled SmolLM2 GGUF file."""
    data = smollm2_gguf.read_bytes()
    path = tmp_path / "truncated.gguf"
    path.write_bytes(data[: int(len(data) * 0.6)])
    return path


@pytest.fixture(scope="session")
def tiny_chat_lm(tmp_path_factory):
    """A tiny random Llama with SmolLM2's real tokenizer and chat template, as a local folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from distchar.models.loading import load_tokenizer

    tokenizer = load_tokenizer("bundled:smollm2-135m-instruct")
    folder = tmp_path_factory.mktemp("tiny-chat")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
"""This machine's closed network refuses background connections: switch them off."""


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (headless) driven by Playwright; no browser is downloaded. Skipped, saying
    so, only where no chromium binary exists (`make browser` installs it; CI does)."""
    chromium_binary = shutil.which("chromium")
    if chromium_binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium, or make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_binary, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
