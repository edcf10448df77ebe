"""The distribution-restrained softmax loss against hand-computed values and gradients."""

import math

import pytest
import torch

from distchar.errors import DistcharError
from distchar.losses import (
    causal_lm_loss,
    classification_loss,
    dsl_classification,
    dsl_language_model,
    non_target_penalty,
    top_non_target_mean,
)

LOGITS = [[1.0, 2.0, 4.0]]  # label 0: non-targets 2 and 4


def test_penalty_by_hand_in_both_reductions():
    z, y = torch.tensor(LOGITS), torch.tensor([0])
    # mean: m = (2 + 4) / 2 = 3, P = 1 + 1; sum (the authors' code): m = 6 / 3 = 2, P = 0 + 4
    assert non_target_penalty(z, y, "mean").item() == pytest.approx(2.0)
    assert non_target_penalty(z, y, "sum").item() == pytest.approx(4.0)
    two = torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 3.0]])
    # second row, label 2: non-targets 0, 0 -> P = 0 in both; sum adds, mean averages
    assert non_target_penalty(two, torch.tensor([0, 2]), "sum").item() == pytest.approx(4.0)
    assert non_target_penalty(two, torch.tensor([0, 2]), "mean").item() == pytest.approx(1.0)


def test_loss_and_gradients_by_hand():
    ce = math.log(math.e + math.e**2 + math.e**4) - 1.0
    softmax = torch.softmax(torch.tensor(LOGITS[0]), 0)
    ce_grad = softmax - torch.tensor([1.0, 0.0, 0.0])
    for reduction, b, penalty, penalty_grad in (
        ("mean", 5e-3, 2.0, [0.0, -2.0, 2.0]),  # 2 (z_j - m); the mean's own derivative cancels
        ("sum", 1e-3, 4.0, [0.0, -4 / 3, 8 / 3]),  # 2 (z_j - m) - (2 / C) sum_j (z_j - m)
    ):
        z = torch.tensor(LOGITS, requires_grad=True)
        loss = dsl_classification(z, torch.tensor([0]), reduction=reduction)
        assert loss.item() == pytest.approx(ce + b * penalty)
        loss.backward()
        expected = ce_grad + b * torch.tensor(penalty_grad)
        assert torch.allclose(z.grad[0], expected, atol=1e-6)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_the_fused_loss_equals_the_definition_through_autograd(reduction):
    torch.manual_seed(3)
    z = torch.randn(16, 10, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 10, (16,))
    fused = dsl_classification(z, y, a=0.7, b=0.3, reduction=reduction)
    (fused_grad,) = torch.autograd.grad(2.5 * fused, z)  # a gradient flowing in from further up
    reference = 0.7 * torch.nn.functional.cross_entropy(z, y) + 0.3 * non_target_penalty(z, y, reduction)
    (reference_grad,) = torch.autograd.grad(2.5 * reference, z)
    assert fused.item() == pytest.approx(reference.item(), rel=1e-12)
    assert torch.allclose(fused_grad, reference_grad, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: dsl_classification(t, y, b=0.3, reduction=reduction), (z,))


def test_uniform_non_targets_cost_nothing_extra():
    z = torch.tensor([[5.0, 1.0, 1.0, 1.0]])
    assert dsl_classification(z, torch.tensor([0]), reduction="mean").item() == pytest.approx(
        classification_loss(z, torch.tensor([0]), "ce").item()
    )


def test_top_non_target_mean_skips_the_target():
    z = torch.tensor([[9.0, 8.0, 7.0, 6.0, 5.0, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    # row 0, target 1 (8.0): non-targets ranked 9, 7, 6, 5 -> [0:2] mean 8, [1:3] mean 6.5
    assert top_non_target_mean(z[:1], torch.tensor([1]), 0, 2).item() == pytest.approx(8.0)
    assert top_non_target_mean(z[:1], torch.tensor([1]), 1, 3).item() == pytest.approx(6.5)
    # row 1, target 0 (not among the top): 6, 5, 4, 3 -> mean 4.5
    assert top_non_target_mean(z[1:], torch.tensor([0]), 0, 4).item() == pytest.approx(4.5)
    with pytest.raises(DistcharError, match=r"DSL top range \[3:2\]"):
        top_non_target_mean(z, torch.tensor([0, 0]), 3, 2)


def test_language_model_variant_by_hand_and_its_gradient():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 6, requires_grad=True)
    labels = torch.tensor([[2, -100, 5]])  # the middle token is not counted
    loss = dsl_language_model(logits, labels, a=1.0, b=0.5, start=0, end=2)
    flat = logits.detach()[0]
    x = []
    for i in (0, 2):
        others = sorted((v.item() for j, v in enumerate(flat[i]) if j != labels[0, i]), reverse=True)
        x.append(sum(others[:2]) / 2)
    x = torch.tensor(x)
    ce = (torch.nn.functional.cross_entropy(flat[[0, 2]], torch.tensor([2, 5]))).item()
    expected = ce + 0.5 * (-torch.log_softmax(x, 0).sum()).item()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad[0, 1].abs().sum() == 0  # an ignored token gets no gradient
    check = torch.randn(1, 3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsl_language_model(t, labels, b=0.5, end=2), (check,))


def test_causal_lm_loss_shifts_and_dispatches():
    logits = torch.randn(2, 4, 7)
    labels = torch.randint(0, 7, (2, 4))
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1))
    assert causal_lm_loss(logits, labels, "ce").item() == pytest.approx(expected.item())
    assert causal_lm_loss(logits, labels, "dsl", b=0.0).item() == pytest.approx(expected.item())
    with pytest.raises(DistcharError, match="Unknown loss 'focal'"):
        causal_lm_loss(logits, labels, "focal")
    with pytest.raises(DistcharError, match="reduction must be 'sum' or 'mean'"):
        dsl_classification(torch.randn(2, 3), torch.tensor([0, 1]), reduction="max")
