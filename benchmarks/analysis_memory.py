"""Benchmark: bounded memory of the analysis (stages 01-04) on a synthetic Llama of more than 4 GB.

Writes the synthetic TinyLlama-shaped fp32 checkpoint of ``extract_memory.py`` (4.4 GB, sharded
safetensors, with a full config so that transformers can load it), then in fresh processes
measures the peak resident set (VmHWM) and time of
- ours: stages 01-04 with the default params (k = 64, ``auto`` SVD, 100 bootstrap repetitions),
  on the whole model and on its first shards only (fewer layers), to see time against the number
  of matrices;
- WeightWatcher: ``AutoModelForCausalLM.from_pretrained`` then ``analyze()`` on the whole model.
Results go to benchmarks/results/analysis_memory.json.

Run: python benchmarks/analysis_memory.py [--scratch DIR] [--skip-weightwatcher]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import analysis_script, write_results
from extract_memory import HIDDEN, KV, LAYERS, MLP, peak_rss_gb, write_synthetic_llama

WEIGHTWATCHER = """
import logging, time
logging.disable(logging.WARNING)
import weightwatcher
from transformers import AutoModelForCausalLM
t = time.perf_counter()
model = AutoModelForCausalLM.from_pretrained({folder!r})
details = weightwatcher.WeightWatcher(model=model).analyze()
print(len(details), time.perf_counter() - t)
"""


def _matrices_and_seconds(stdout: str) -> tuple[float, float]:
    fields = dict(line.split() for line in stdout.splitlines() if line.startswith(("TOTAL", "MATRICES")))
    return float(fields["MATRICES"]), float(fields["TOTAL"])


def full_config(folder: Path) -> None:
    """The config transformers needs to build the model (our reader uses only model_type)."""
    config = {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": HIDDEN,
        "intermediate_size": MLP, "num_hidden_layers": LAYERS, "num_attention_heads": 32,
        "num_key_value_heads": KV // 64, "vocab_size": 32000,
        "max_position_embeddings": 2048, "torch_dtype": "float32", "tie_word_embeddings": False,
    }  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--skip-weightwatcher", action="store_true")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="distchar-bench-"))
    env = {**os.environ, "TQDM_DISABLE": "1"}
    os.environ.update(env)
    try:
        model = scratch / "synthetic-llama"
        gb = write_synthetic_llama(model)
        full_config(model)
        half = scratch / "first-shards"
        half.mkdir()
        shards = sorted(model.glob("*.safetensors"))
        for shard in shards[: len(shards) // 2]:
            (half / shard.name).symlink_to(shard)
        shutil.copy(model / "config.json", half / "config.json")
        print(f"synthetic Llama: {gb:.2f} GB on disk")

        ours_gb, out = peak_rss_gb(analysis_script(str(model)))
        n_all, t_all = _matrices_and_seconds(out)
        print(f"ours, whole model: {n_all:.0f} matrices, {t_all:.0f} s, peak RSS {ours_gb:.2f} GB")
        half_gb, out = peak_rss_gb(analysis_script(str(half)))
        n_half, t_half = _matrices_and_seconds(out)
        print(f"ours, first shards: {n_half:.0f} matrices, {t_half:.0f} s, peak RSS {half_gb:.2f} GB")
        ww_gb = ww_s = None
        if not args.skip_weightwatcher:
            ww_gb, out = peak_rss_gb(WEIGHTWATCHER.format(folder=str(model)))
            ww_s = float(out.split()[-1])
            print(f"weightwatcher: {ww_s:.0f} s, peak RSS {ww_gb:.2f} GB")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "model_gb_on_disk": round(gb, 3),
        "peak_rss_gb": round(ours_gb, 3),
        "ww_peak_rss_gb": None if ww_gb is None else round(ww_gb, 3),
        "ww_over_ours_peak": None if ww_gb is None else round(ww_gb / ours_gb, 2),
        "ours_s": round(t_all, 1),
        "ww_s": None if ww_s is None else round(ww_s, 1),
        "seconds_per_matrix_whole": round(t_all / n_all, 3),
        "seconds_per_matrix_first_shards": round(t_half / n_half, 3),
        "matrices_whole": int(n_all),
        "matrices_first_shards": int(n_half),
        "goal": "peak_rss_gb < 2 and ww_peak_rss_gb / peak_rss_gb >= 3; seconds per matrix constant",
    }
    write_results("analysis_memory", results)


if __name__ == "__main__":
    main()
