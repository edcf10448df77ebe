"""params.yaml is validated before any work: bad values stop with one sentence naming the key."""

import json
import subprocess
import sys

import pytest
from helpers import REPO

from distchar.config import load_params
from distchar.errors import DistcharError

REST = "svd: {}\npowerlaw: {}\nodds: {}\n"


def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    if not text.startswith("- "):
        text = text if "svd" in text else text + REST
        text = text if "generator:" in text else text + "generator: {}\nlora: {}\n"
        text = text if "training:" in text else text + "training: {tasks: {}}\n"
        text = text if "evaluate:" in text else text + "evaluate: {}\n"
        text = text if "robustness:" in text else text + "robustness: {}\n"
        text = text if "nsga2:" in text else text + "nsga2: {}\n"
    path.write_text(text)
    return path


def test_the_committed_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.models == {
        "smollm2-135m-instruct": "bundled:smollm2-135m-instruct",
        "all-minilm-l6-v2": "bundled:all-minilm-l6-v2",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "models: {a: o/x}\nextract: {}\nextrct: {}\n",
            "unknown key 'extrct'; allowed keys here: models, extract, svd",
        ),
        ("models: {a: o/x}\n", "key 'extract' is missing."),
        ("models: {a: ./x}\nextract: {}\n", "models.a: the source './x' does not exist: give 'bundled:NAME', a .gguf"),
        ("models: {a: bundled:gpt5}\nextract: {}\n", "models.a: the source 'bundled:gpt5' names no bundled model"),
        ("models: {a: o/x}\nextract: {typos: [q]}\n", "unknown key 'extract.typos'; allowed keys here: types."),
        ("models: {a: o/x}\nextract: {types: [q, z]}\n", "key 'extract.types.1' input should be 'q', 'k', 'v'"),
        ("models: {a: o/x}\nextract: {types: q}\n", "key 'extract.types' input should be a valid list"),
        ("models: {a: o/x}\nextract: {types: []}\n", "key 'extract.types' list should have at least 1 item"),
        ("models: {a: o/x}\nextract: {types: [q, q]}\n", "key 'extract.types' value error, must not repeat a type"),
        ("models: {}\nextract: {}\n", "key 'models' dictionary should have at least 1 item"),
        ("models: {Big Model: o/x}\nextract: {}\n", "string should match pattern"),
        ("extract: {types: [q]}\n", "key 'models' is missing."),
        ("- a\n- b\n", "must be a mapping of sections"),
        ("models: {a: o/x}\nextract: {}\nsvd: {k: 0}\npowerlaw: {}\n", "key 'svd.k' input should be greater than"),
        ("models: {a: o/x}\nextract: {}\nsvd: {k: most}\npowerlaw: {}\n", "or input should be 'all' (got 'most')"),
        ("models: {a: o/x}\nextract: {}\nsvd: {method: lanczos}\npowerlaw: {}\n", "key 'svd.method' input should be"),
        ("models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {bootstrap: -1}\n", "key 'powerlaw.bootstrap'"),
        ("models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {min_tail: 2}\n", "key 'powerlaw.min_tail'"),
        ("models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {}\n", "key 'odds' is missing."),
        (
            "models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {}\nodds: {models: [b]}\n",
            "odds.models names 'b', which is not under 'models:' (a).",
        ),
        (
            "models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {}\nodds: {split: [0.5, 0.5, 0.5]}\n",
            "key 'odds.split' value error, must be three positive shares summing to 1",
        ),
        (
            "models: {a: o/x}\nextract: {}\nsvd: {}\npowerlaw: {}\nodds: {profile: huge}\n",
            "key 'odds.profile' input should be",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {inits: [kaiming]}\ngenerator: {}\n",
            "key 'lora.inits.0' input should be",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {seeds: []}\ngenerator: {}\n",
            "key 'lora.seeds' list should have at least",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {rank: 0}\ngenerator: {}\n",
            "key 'lora.rank' input should be greater",
        ),
        ("models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {crowding: fancy}\n", "key 'generator.crowding' input"),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {nugget: 1}\n",
            "key 'generator.nugget' input should be less",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\n"
            "training: {tasks: {sentiment: {model: minilm, data: t.csv, steps: 1, batch_size: 1}}}\n",
            "training.tasks.sentiment.model names 'minilm', which is not under 'models:' (a).",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {}, learning_rates: []}\n",
            "key 'training.learning_rates' list should have at least 1 item",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {translation: {}}}\n",
            "input should be 'odds' or 'sentiment'",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\n"
            "training: {tasks: {sentiment: {model: a, steps: 1, batch_size: 1}}}\n",
            "key 'training.tasks.sentiment.data' is missing.",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {inits: [default, pissa]}\ngenerator: {}\n"
            "training: {tasks: {sentiment: {model: a, data: t.csv, steps: 1, batch_size: 1}}}\n",
            "evaluate names the init 'reshaped', which is not in lora.inits",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {seeds: [0, 1]}\ngenerator: {}\n"
            "training: {tasks: {sentiment: {model: a, data: t.csv, steps: 1, batch_size: 1, seeds: [0, 2]}}}\n",
            "training.tasks.sentiment.seeds names 2, which is not in lora.seeds (stage 05 makes only those)",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\n"
            "training: {tasks: {sentiment: {model: a, data: t.csv, steps: 1, batch_size: 1, "
            "inits: [default, pissa]}}}\n",
            "training.tasks.sentiment.inits lacks evaluate.claim_init 'reshaped'",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {sentiment: "
            "{model: a, data: t.csv, steps: 1, batch_size: 1, learning_rates: [0.001, 0.001]}}}\n",
            "training.tasks.sentiment.learning_rates repeats a value",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {sentiment: {model: a, "
            "data: t.csv, steps: 1, batch_size: 1, inits: [reshaped, default], learning_rates: {reshaped: [0.1]}}}}\n",
            "training.tasks.sentiment.learning_rates gives no rate for the init 'default'",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {sentiment: {model: a, "
            "data: t.csv, steps: 1, batch_size: 1, inits: [reshaped], learning_rates: {reshaped: [0.001], "
            "pissa: [0.001]}}}}\n",
            "training.tasks.sentiment.learning_rates names the init 'pissa', which this task does not train",
        ),
        (
            "models: {a: o/x}\nextract: {}\nlora: {}\ngenerator: {}\ntraining: {tasks: {sentiment: {model: a, "
            "data: t.csv, steps: 1, batch_size: 1, inits: [reshaped], learning_rates: {reshaped: [0.1, 0.1]}}}}\n",
            "training.tasks.sentiment.learning_rates.reshaped repeats a value",
        ),
        (
            "models: {a: o/x}\nextract: {}\nsvd: {k: 16}\npowerlaw: {}\nodds: {}\nlora: {rank: 32}\ngenerator: {}\n",
            "lora.rank (32) exceeds svd.k (16): the reshaped inits take their first lora.rank singular values",
        ),
        ("models: {a: o/x}\nextract: {}\nnsga2: {variants: [improved, pcd]}\n", "nsga2.variants must list 'cd'"),
        ("models: {a: o/x}\nextract: {}\nnsga2: {snapshots: [300]}\n", "nsga2.snapshots [300] must be earlier than"),
        (
            "models: {a: o/x}\nextract: {}\nnsga2: {seeds: 2}\n",
            "key 'nsga2.seeds' input should be greater than or equal",
        ),
        (
            "models: {a: o/x}\nextract: {}\nnsga2: {problems: [dtlz2]}\n",
            "key 'nsga2.problems.0' input should be 'sch'",
        ),
        ("models: {a: o/x}\nextract: {}\nrobustness: {losses: [dsl]}\n", "robustness.losses must list 'ce'"),
        ("models: {a: o/x}\nextract: {}\nrobustness: {epsilon: 0.3}\n", "robustness.epsilon (0.3) must be one of"),
        ("models: {a: o/x}\nextract: {}\nrobustness: {dsl_b: [0.01, 0.01]}\n", "robustness.dsl_b must not repeat"),
        (
            "models: {a: o/x}\nextract: {}\nrobustness: {dsl_b: [-1]}\n",
            "'robustness.dsl_b.0' input should be greater",
        ),
        (
            "models: {a: o/x}\nextract: {}\nrobustness: {architectures: [resnet]}\n",
            "key 'robustness.architectures.0'",
        ),
    ],
)
def test_invalid_params_name_the_key(tmp_path, text, expected):
    with pytest.raises(DistcharError) as err:
        load_params(write(tmp_path, text))
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_model_source_names_the_models_that_exist(tmp_path):
    params = load_params(write(tmp_path, "models: {a: o/x, b: o/y}\nextract: {}\n"))
    with pytest.raises(DistcharError, match="no model 'c' under 'models:'; there are: a, b."):
        params.model_source("c")


def test_command_line_check_prints_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, "models: {a: o/x}\nextract: {types: [z]}\n")
    result = subprocess.run([sys.executable, "-m", "distchar.config", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "extract.types.0" in result.stderr


def apply_documented_preset(marker: str, page: str, tmp_path):
    """The `dvc exp run -S ...` preset after ``<!-- marker -->`` in the docs page, applied to params.yaml
    and validated; every key it sets must already be in params.yaml (as `dvc exp run -S` needs)."""
    import yaml

    from distchar.profiles import apply_preset, documented_preset

    params = apply_preset(yaml.safe_load((REPO / "params.yaml").read_text()),
                          documented_preset(marker, REPO / "docs" / page))  # fmt: skip
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return load_params(path)


def test_the_documented_gpu_profile_is_valid_params(tmp_path):
    from distchar.statistics import attainable

    gpu = apply_documented_preset("gpu-profile", "gpu.md", tmp_path)
    assert len(gpu.lora.seeds) == 8 and len(gpu.training.learning_rates) == 5 and gpu.training.device == "cuda"
    # its claims can be decided: the smallest sign-flip p over its seeds survives Holm over the baselines
    n = len(gpu.lora.seeds)
    assert attainable(2 / 2**n, len(gpu.evaluate.baselines), gpu.evaluate.confidence)
    assert not attainable(2 / 2 ** (n - 1), len(gpu.evaluate.baselines), gpu.evaluate.confidence)


def test_a_task_trains_its_own_grid_or_the_shared_one(tmp_path):
    text = (
        "models: {a: o/x}\nextract: {}\nlora: {seeds: [0, 1, 2]}\ngenerator: {}\ntraining: {learning_rates: "
        "[0.001], tasks: {sentiment: {model: a, data: t.csv, steps: 1, batch_size: 1, inits: [reshaped, default], "
        "seeds: [2], learning_rates: [0.0001]}, odds: {model: a, data: q, steps: 1, batch_size: 1}}}\n"
    )
    params = load_params(write(tmp_path, text))
    sentiment = params.training.grid("sentiment", params.lora)
    assert sentiment == (["reshaped", "default"], [2], {"reshaped": [1e-4], "default": [1e-4]}) and sentiment.runs == 2
    shared = {init: [1e-3] for init in params.lora.inits}
    assert params.training.grid("odds", params.lora) == (params.lora.inits, [0, 1, 2], shared)
    per_init = text.replace("learning_rates: [0.0001]", "learning_rates: {default: [0.01], reshaped: [0.1, 0.2]}")
    per_init = load_params(write(tmp_path, per_init))
    grid = per_init.training.grid("sentiment", per_init.lora)
    assert grid.learning_rates == {"reshaped": [0.1, 0.2], "default": [0.01]} and grid.runs == 3


def test_the_documented_powered_profile_is_valid_params_that_can_reach_verdicts(tmp_path):
    from distchar.statistics import attainable

    powered = apply_documented_preset("powered-profile", "pipeline.md", tmp_path)
    claim = {powered.evaluate.claim_init, *powered.evaluate.baselines}
    sentiment, odds = (powered.training.grid(task, powered.lora) for task in ("sentiment", "odds"))
    assert claim <= set(sentiment.inits) and len(sentiment.seeds) >= 8
    # each init trains at the rate its pilot picked on validation, and that pick lies inside the pilot's candidates
    picks = json.loads((REPO / "results" / "powered" / "pilot" / "sentiment" / "picks.json").read_text())
    assert sentiment.learning_rates == {init: [picks["inits"][init]["learning_rate"]] for init in sentiment.inits}
    assert all(picks["inits"][init]["bracketed"] for init in sentiment.inits)
    assert picks["steps"] == powered.training.tasks["sentiment"].steps
    assert {"reshaped", "default"} <= set(odds.inits) and len(odds.seeds) >= 6
    settings = powered.training.tasks
    assert settings["sentiment"].train_size == settings["sentiment"].eval_size == 0  # whole splits
    assert all(task.eval_every > 0 for task in settings.values())  # validation curves: has it flattened?
    # every claim can be decided: Holm over the baselines each task trains
    for grid in (sentiment, odds):
        baselines = [b for b in powered.evaluate.baselines if b in grid.inits]
        assert attainable(2 / 2 ** len(grid.seeds), len(baselines), powered.evaluate.confidence)
    assert powered.robustness.seeds == 8 and powered.robustness.epsilon == 0.1


def test_the_documented_full_nsga2_profile_is_valid_params(tmp_path):
    full = apply_documented_preset("nsga2-full-profile", "nsga2.md", tmp_path).nsga2
    assert full.seeds == 30 and set(full.variants) == {"cd", "improved", "pcd", "ce", "mnn", "2nn"}


def test_auto_runs_on_cuda_when_present_and_cuda_without_it_is_one_sentence():
    import torch

    from distchar.devices import resolve_device

    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DistcharError, match="params.yaml: odds.device is 'cuda' but no CUDA device is available"):
            resolve_device("cuda", "odds.device")
