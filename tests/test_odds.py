"""What Are the Odds?: ground truth, questions, parser, scorer, floors, re-scoring, and the chat harness
(distchar.models.chat) it asks its questions through."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from distchar.errors import DistcharError
from distchar.models.chat import generate, generate_one_by_one, load_language_model, prefix_groups
from distchar.studies.odds.distributions import (
    PERCENTILE_TARGETS,
    Distribution,
    idealized_groups,
    load_real_world,
)
from distchar.studies.odds.floors import answers_of, best_constant, constant_scores, floors
from distchar.studies.odds.parsing import ANSWER_CLOSE, ANSWER_OPEN, parse_answer
from distchar.studies.odds.profiles import select
from distchar.studies.odds.questions import benchmark_questions, finetuning_splits, repeat_sampling
from distchar.studies.odds.rescore import main as rescore_main
from distchar.studies.odds.rescore import rescore
from distchar.studies.odds.scoring import group_errors, reference_of, score_rows, summarise

REAL_WORLD = load_real_world()


@pytest.fixture(scope="module")
def questions() -> pd.DataFrame:
    return pd.DataFrame.from_records(benchmark_questions(REAL_WORLD))


# ---------------------------------------------------------------- ground truth


def test_reference_truths_agree_with_numpy_and_scipy():
    ref = Distribution("gamma", {"shape": 2, "scale": 20}).reference(size=20_000)
    x = ref.values
    probe = np.array([5.0, 33.3, 80.0, ref.values[100]])
    assert np.allclose(ref.percentile_of(probe), [stats.percentileofscore(x, v, kind="mean") for v in probe])
    assert np.allclose(ref.value_at([1, 50, 99]), np.round(np.percentile(x, [1, 50, 99]), 3))
    assert ref.fraction_between(10, 40) == pytest.approx(np.mean((x >= 10) & (x <= 40)))
    low, high = ref.central_range(0.5)
    assert (low, high) == tuple(np.round(np.percentile(x, [25, 75]), 3))
    assert ref.central_range(1.0) == tuple(np.round(np.percentile(x, [1, 99]), 3))  # clipped to [P1, P99]


def test_discrete_percentiles_are_mid_ranks():
    ref = Distribution("poisson", {"rate": 70}).reference(size=20_000)
    x = ref.values
    assert ref.percentile_of(70.0) == pytest.approx(100 * (np.mean(x < 70) + np.mean(x <= 70)) / 2)


@pytest.mark.parametrize("dist", idealized_groups(), ids=lambda d: d.group)
def test_every_reference_sample_follows_its_exact_distribution(dist):
    """The sampler and the exact scipy distribution (used by the fitted-family floor) agree."""
    ref = dist.reference()
    assert ref.values.size == 100_000
    assert np.array_equal(ref.values, np.round(ref.values, 3))  # rounded to 3 decimals, as the paper
    exact = dist.scipy()
    values = ref.value_at(PERCENTILE_TARGETS)
    midrank = 50 * (exact.cdf(values) + exact.cdf(values - 1e-9))
    assert np.abs(midrank - ref.percentile_of(values)).max() < 0.6  # percentile points; rounding + noise


def test_reference_samples_are_deterministic_and_independent_of_other_groups():
    a = Distribution("normal", {"mean": 100, "sd": 10}).reference(size=1000)
    b = Distribution("normal", {"mean": 100, "sd": 10}).reference(size=1000)
    c = Distribution("normal", {"mean": 100, "sd": 10}).reference(seed=7, size=1000)
    assert np.array_equal(a.values, b.values) and not np.array_equal(a.values, c.values)


def test_the_three_multinomial_outcomes_come_from_one_draw():
    groups = [d for d in idealized_groups() if d.family == "multinomial"]
    assert [d.group for d in groups] == ["multinomial_1", "multinomial_2", "multinomial_3"]
    means = [d.reference().mean for d in groups]
    assert sum(means) == pytest.approx(1000)
    assert len(idealized_groups()) == 14


def test_real_world_truths_interpolate_the_released_tables():
    var = REAL_WORLD["Average Step Count"]
    assert var.percentile_of(var.quantiles[30.0]) == pytest.approx(30.0)
    assert np.isnan(var.percentile_of(var.quantiles[1.0] - 1))
    mass, (a, b) = next(iter(var.central_ranges.items()))
    assert var.fraction_between(a, b)[0] == pytest.approx(mass)
    assert len(REAL_WORLD) == 12 and {v.domain for v in REAL_WORLD.values()} == {"health", "finance", "climate"}


# ---------------------------------------------------------------- questions


def test_the_benchmark_grid_is_complete_and_deterministic(questions):
    counts = questions.groupby(["source", "task"]).size().to_dict()
    ranges = sum(len(v.central_ranges) for v in REAL_WORLD.values())
    assert counts == {("idealized", "percentiles"): 14 * 11 * 16, ("idealized", "probabilities"): 14 * 10 * 16,
                      ("idealized", "sampling"): 14 * 16, ("real_world", "percentiles"): 12 * 11 * 3,
                      ("real_world", "probabilities"): ranges * 3}  # fmt: skip
    again = pd.DataFrame.from_records(benchmark_questions(REAL_WORLD))
    assert again["prompt"].equals(questions["prompt"])


def test_prompts_state_the_distribution_shots_and_query(questions):
    row = questions[(questions["group"] == "normal") & (questions["shot_kind"] == "within") & (questions["shots"] == 3)
                    & (questions["task"] == "percentiles")].iloc[0]  # fmt: skip
    assert "normal distribution with mean 100 and standard deviation 10" in row["prompt"]
    assert row["prompt"].count("is at percentile") == 3
    assert row["prompt"].endswith(f"What is the percentile of the value {row['value']:g}?")
    inter = questions[(questions["shot_kind"] == "within_intermediate") & (questions["task"] == "percentiles")]
    shot_values = {line.split()[2] for p in inter["prompt"] for line in p.splitlines() if "is at percentile" in line}
    asked = {f"{v:g}" for v in inter["value"]}
    assert not shot_values & asked  # intermediate shots never equal a query


def test_fine_tuning_splits_are_disjoint_by_distribution():
    splits = finetuning_splits(draws_per_family=10, shares=(0.6, 0.2, 0.2), size=5000)
    keys = {
        name: {(r["family"], json.dumps(r["params"], sort_keys=True)) for r in rows} for name, rows in splits.items()
    }
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["validation"]
    assert not keys["validation"] & keys["test"]
    canonical = {(d.family, json.dumps(d.params, sort_keys=True)) for d in idealized_groups()}
    assert not canonical & set().union(*keys.values())
    per_family = {f: sum(1 for fam, _ in keys["train"] if fam == f) for f in ("normal", "gamma")}
    assert per_family == {"normal": 6, "gamma": 6}
    row = splits["train"][0]
    assert row["target_answer"].startswith("<answer>") and row["split"] == "train"


def test_profiles_select_cells(questions):
    smoke = select(questions, "smoke")
    assert set(smoke[smoke["source"] == "idealized"]["group"]) == {"normal", "exponential", "poisson"}
    default = select(questions, "default")
    assert set(zip(default["shot_kind"], default["shots"], strict=True)) == {("none", 0), ("within", 3)}
    assert len(select(questions, "full")) == len(questions) - 0
    with pytest.raises(DistcharError, match="Unknown evaluation profile 'huge'"):
        select(questions, "huge")
    repeated = repeat_sampling(smoke, 4)
    assert (repeated["task"] == "sampling").sum() == 4 * (smoke["task"] == "sampling").sum()


# ---------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "task", "value", "status", "method"),
    [
        ("<answer>37.5</answer>", "percentiles", 37.5, "ok", "tags"),
        ("<answer>1.2e-3</answer>", "probabilities", 0.0012, "ok", "tags"),
        ("<answer>2.5E+2</answer>", "sampling", 250.0, "ok", "tags"),
        ("<answer>1.5 x 10^3</answer>", "sampling", 1500.0, "ok", "tags"),
        ("<answer>37%</answer>", "probabilities", 0.37, "ok", "tags"),
        ("<answer>37%</answer>", "percentiles", 37.0, "ok", "tags"),
        ("<answer>30-40</answer>", "percentiles", 35.0, "ok", "tags"),
        ("<answer>between 20% and 40%</answer>", "probabilities", 0.3, "ok", "tags"),
        ("<answer>-3 to 5</answer>", "sampling", 1.0, "ok", "tags"),
        ("<answer>-5.2</answer>", "sampling", -5.2, "ok", "tags"),
        ("<answer>12,345.6</answer>", "sampling", 12345.6, "ok", "tags"),
        ("<answer>3/4</answer>", "probabilities", 0.75, "ok", "tags"),
        ("<answer> 42", "percentiles", 42.0, "ok", "open_tag"),
        ("The percentile of the value 76.494 is 76.5%.", "percentiles", 76.5, "ok", "fallback"),
        ("I think 0.25", "probabilities", 0.25, "ok", "fallback"),
        ("<answer>150</answer>", "percentiles", None, "out_of_range", "tags"),
        ("<answer>1.5</answer>", "probabilities", None, "out_of_range", "tags"),
        ("<answer>many</answer>", "percentiles", None, "unparseable", "tags"),
        ("I cannot know that.", "sampling", None, "unparseable", "fallback"),
        ("", "percentiles", None, "unparseable", "fallback"),
    ],
)
def test_parser_edge_cases(text, task, value, status, method):
    parsed = parse_answer(text, task)
    assert (parsed.status, parsed.method) == (status, method)
    assert parsed.value == (pytest.approx(value) if value is not None else None)


# ---------------------------------------------------------------- scorer and floors


def _hand_made() -> pd.DataFrame:
    return pd.DataFrame({
        "task": ["percentiles"] * 4 + ["probabilities"] * 2,
        "source": "idealized", "domain": "idealized", "condition": "idealized", "shot_kind": "none", "shots": 0,
        "group": ["normal", "normal", "gamma", "gamma", "normal", "gamma"],
        "truth": [10.0, 50.0, 90.0, 30.0, 0.5, 0.2],
        "answer": ["<answer>20</answer>", "<answer>50</answer>", "<answer>60</answer>", "nothing",
                   "<answer>0.4</answer>", "<answer>45%</answer>"],
    })  # fmt: skip


def test_scorer_on_hand_made_answers():
    scored = score_rows(_hand_made())
    assert scored["error"].tolist()[:3] == [10.0, 0.0, 30.0]
    assert scored["status"].tolist()[3] == "unparseable"
    assert scored["error"].tolist()[4:] == pytest.approx([10.0, 25.0])
    groups = group_errors(scored)
    summary = summarise(groups).set_index("task")
    # percentiles: normal mean 5, gamma mean 30 -> 17.5 +- 12.5 over 2 groups; one of 4 unparseable
    assert summary.loc["percentiles", "mean"] == pytest.approx(17.5)
    assert summary.loc["percentiles", "sem"] == pytest.approx(12.5)
    assert summary.loc["percentiles", "unparseable_share"] == pytest.approx(0.25)
    assert summary.loc["probabilities", "mean"] == pytest.approx(17.5)


def test_sampling_is_scored_by_ks_against_the_reference():
    dist = Distribution("normal", {"mean": 100, "sd": 10})
    good = np.random.default_rng(0).normal(100, 10, 400)
    rows = pd.DataFrame({"task": "sampling", "source": "idealized", "domain": "idealized", "condition": "idealized",
                         "shot_kind": "none", "shots": 0, "group": "normal", "truth": np.nan,
                         "answer": [f"<answer>{x:.3f}</answer>" for x in good]})  # fmt: skip
    ks = group_errors(score_rows(rows))["error"].iloc[0]
    assert ks == pytest.approx(stats.ks_2samp(np.round(good, 3), dist.reference().values).statistic)
    assert ks < 1.36 / np.sqrt(400)
    shifted = rows.assign(answer=[f"<answer>{x + 10:.3f}</answer>" for x in good])
    assert group_errors(score_rows(shifted))["error"].iloc[0] > 0.3


@pytest.mark.parametrize("by", [None, ["domain"]])
def test_constant_scores_are_what_the_scorer_reports_for_each_constant(questions, by):
    real = questions[(questions["source"] == "real_world") & (questions["task"] == "probabilities")]
    part = real[real["shot_kind"] == "none"].reset_index(drop=True)
    grid, scores = constant_scores(part, by)
    for c in (0.0, 0.25, 0.562, 1.0):
        answers = answers_of("best_constant_probability", part, REAL_WORLD, c)
        scored = summarise(group_errors(score_rows(part.assign(answer=answers))), by)
        assert scores[np.searchsorted(grid, c)] == pytest.approx(scored["mean"].mean(), rel=1e-12)
    assert best_constant(part, by) == grid[np.argmin(np.round(scores, 9))]


def test_floors_reproduce_the_papers_reference_numbers(questions):
    zero = questions[questions["shot_kind"] == "none"]
    ideal = zero[(zero["source"] == "idealized") & (zero["task"] != "sampling")]
    table = floors(ideal, REAL_WORLD).set_index(["strategy", "task"])
    assert table.loc[("always_50", "percentiles"), "mean"] == pytest.approx(27.09, abs=0.1)  # paper: 27.09
    assert table.loc[("fitted_family", "percentiles"), "mean"] < 0.2  # exact calculator: sampling noise only
    real = zero[(zero["source"] == "real_world") & (zero["condition"] == "normal_approximation")]
    by_domain = floors(real, REAL_WORLD, by=["domain"])
    normal = by_domain[(by_domain["strategy"] == "normal_approximation") & (by_domain["task"] == "percentiles")]
    assert normal.set_index("domain")["mean"].round(2).to_dict() == {"health": 2.61, "finance": 5.43, "climate": 3.31}
    best = by_domain[(by_domain["strategy"] == "best_constant_probability")].set_index("domain")
    assert best.loc["health", "mean"] == pytest.approx(25.3, abs=0.05)  # paper: 25.3


# ---------------------------------------------------------------- re-scoring a CSV


def test_rescoring_a_csv_reproduces_the_scores(questions, tmp_path):
    part = questions[(questions["shot_kind"] == "none") & (questions["task"] != "sampling")].reset_index(drop=True)
    part = part.assign(answer=answers_of("normal_approximation", part, REAL_WORLD))
    direct = summarise(group_errors(score_rows(part)))
    path = tmp_path / "published.csv"
    part[["task", "group", "value", "low", "high", "answer", "condition"]].to_csv(path, index=False)
    _, summary = rescore(path)
    summary = summary[summary["domain"].isna()]  # the per-domain rows come in addition
    merged = direct.merge(summary, on=["task", "setting"], suffixes=("", "_rescored"))
    assert len(merged) == len(direct)
    assert np.allclose(merged["mean"], merged["mean_rescored"])


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (
            "task,group,value,answer\npercentiles,normal,abc,<answer>3</answer>\n",
            "row 1, column 'value': 'abc' is not a number",
        ),
        (
            "task,group,value,answer\npercentiles,normal,90,1\npercentage,normal,1,2\n",
            "row 2, column 'task': 'percentage'",
        ),
        ("task,group,value,answer\npercentiles,cauchy,1,2\n", "row 1, column 'group': 'cauchy' is neither"),
        ("task,group,low,answer\nprobabilities,normal,1,2\n", "row 1, column 'high': None is not a number"),
        ("task,value,answer\npercentiles,1,2\n", "has no column 'group'"),
    ],
)
def test_malformed_csv_names_the_row_and_column(tmp_path, csv, message, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(csv)
    assert rescore_main([str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_rescore_command_prints_a_summary_and_writes_scores(tmp_path, capsys):
    path = tmp_path / "answers.csv"
    path.write_text("task,group,value,low,high,answer\npercentiles,Normal,100,,,<answer>50</answer>\n"
                    "probabilities,Average Step Count,,7635.28,8418.632,<answer>0.1</answer>\n")  # fmt: skip
    assert rescore_main([str(path), "--out", str(tmp_path / "scores.csv")]) == 0
    scores = pd.read_csv(tmp_path / "scores.csv")
    median = reference_of("normal").percentile_of(100.0)  # the sample's percentile of 100, about 50
    assert scores["error"].tolist() == pytest.approx([abs(50 - median), 0.2])  # released mass 0.102
    assert "percentiles" in capsys.readouterr().out


# ---------------------------------------------------------------- harness


def test_prefix_groups_share_what_pays():
    seqs = [[1, 2, 3, 4, 5], [1, 2, 3, 4, 6], [1, 2, 3, 4, 7], [1, 9, 9, 9, 9], [8, 8]]
    groups = prefix_groups(seqs)
    assert groups[0] == ([0, 1, 2], 4)
    assert [members for members, _ in groups] == [[0, 1, 2], [3], [4]]
    assert prefix_groups([[5, 5, 5], [5, 5, 5]]) == [([0, 1], 2)]  # identical prompts keep one token each


def test_batched_generation_equals_one_by_one_on_a_tiny_model(tiny_chat_lm, questions):
    lm = load_language_model(str(tiny_chat_lm))
    prompts = questions[questions["shot_kind"].isin(["none", "within"]) & (questions["shots"] <= 3)]["prompt"]
    prompts = prompts.iloc[::97].tolist()[:24]
    tags = {"prefill": ANSWER_OPEN, "stop": ANSWER_CLOSE}
    batched = generate(lm, prompts, max_new_tokens=6, batch_size=8, progress=False, **tags)
    assert batched == generate_one_by_one(lm, prompts, max_new_tokens=6, **tags)
    assert all(answer.startswith(ANSWER_OPEN) for answer in batched)


def test_a_model_that_never_answers_gets_a_result_not_a_crash(tiny_chat_lm, tmp_path):
    from distchar.config import OddsParams
    from distchar.stages.odds import run_evaluation
    from distchar.stages.odds_questions import run_questions

    params = OddsParams(profile="smoke", reference_samples=5000, finetune_draws=3, sampling_n=3, max_new_tokens=4)
    run_questions(params, None, tmp_path / "questions")
    silent = tmp_path / "silent"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_lm)
    torch.nn.init.zeros_(model.model.norm.weight)  # every logit 0: greedy picks token 0, an empty special token
    model.save_pretrained(silent)
    AutoTokenizer.from_pretrained(tiny_chat_lm).save_pretrained(silent)
    result = run_evaluation("silent", str(silent), params, tmp_path / "questions", tmp_path / "out")
    assert result["percentiles"]["idealized/0-shot"] == {
        "mean": None,
        "sem": None,
        "groups": 0,
        "unparseable_share": 1.0,
    }
    answers = pd.read_csv(tmp_path / "out" / "answers.csv")
    greedy = answers[answers["task"] != "sampling"]
    assert (greedy["status"] == "unparseable").all()
    for name in ("by_family", "by_shots", "by_condition", "predicted_vs_true"):
        assert (tmp_path / "out" / f"{name}.png").stat().st_size > 1000


def test_a_bert_encoder_is_refused_with_one_sentence():
    with pytest.raises(DistcharError, match="is a BERT encoder; generating answers needs a causal LM"):
        load_language_model("bundled:all-minilm-l6-v2")


@pytest.mark.slow
def test_smollm2_answers_real_questions_batched_as_one_by_one(questions, monkeypatch):
    """Eight questions whose answers end at different steps: every answer is ``model.generate``'s
    alone, and the cache shrinks as they finish (compactions after the prefix copy of all eight)."""
    from transformers.cache_utils import Cache

    lm = load_language_model("bundled:smollm2-135m-instruct")
    part = questions[questions["shot_kind"] == "none"].iloc[::37].head(8)
    sizes = []
    reorder = Cache.reorder_cache
    monkeypatch.setattr(Cache, "reorder_cache", lambda self, rows: (sizes.append(len(rows)), reorder(self, rows))[1])
    answers = generate(lm, part["prompt"].tolist(), max_new_tokens=24, batch_size=8, stop=ANSWER_CLOSE, progress=False)
    assert sizes[0] == 8 and len(sizes) > 1 and sizes[1:] == sorted(sizes[1:], reverse=True) and sizes[-1] < 8
    assert answers == generate_one_by_one(lm, part["prompt"].tolist(), max_new_tokens=24, stop=ANSWER_CLOSE)
    assert all(a.strip() for a in answers)
    scored = score_rows(part.assign(answer=answers))
    assert set(scored["status"]) <= {"ok", "unparseable", "out_of_range"}
