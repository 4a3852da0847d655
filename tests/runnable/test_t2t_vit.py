"""T2T-ViT runnable: tiny gate, T2T-ViT-14 parameter count, the soft split against F.unfold."""

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import figure, runnable

T = runnable("t2t-vit")


def test_tiny_classifies_held_out_digits():
    result = T.train(T.PRESETS["tiny"])
    assert result["metric"] == T.GATE[0] == "accuracy"
    assert result["passed"] and result["value"] >= T.GATE[2], result


def test_paper_preset_is_t2t_vit_14_within_two_percent():
    with torch.device("meta"):
        model = T.build_model(T.PRESETS["paper"])
        tokens = model.tokens(torch.zeros(1, 3, 224, 224))
    assert tokens.shape == (1, 14 * 14, 384)  # 224 -> 56 -> 28 -> 14
    n = sum(p.numel() for p in model.parameters())
    assert abs(n / figure("t2t-vit", "params-14") - 1) <= 0.02  # 21,465,422 counted


@pytest.mark.parametrize(
    "C,H,k,s,p", [(1, 8, 3, 1, 1), (3, 9, 3, 2, 1), (2, 16, 7, 4, 2), (4, 6, 2, 2, 0)]
)
def test_soft_split_equals_unfold(C, H, k, s, p):
    x = torch.randn(2, C, H, H)
    expected = F.unfold(x, k, padding=p, stride=s).transpose(1, 2)  # (B, L, C*k*k)
    assert torch.equal(T.soft_split(x, k, s, p), expected)


def test_restructurize_undoes_the_flattening_of_a_grid():
    grid = torch.randn(2, 5, 4, 4)
    assert torch.equal(T.restructurize(grid.flatten(2).transpose(1, 2)), grid)


def test_t2t_layer_changes_width_with_a_value_residual():
    torch.manual_seed(0)
    layer = T.Block(36, 16, heads=1, mlp_ratio=1.0)
    assert layer(torch.randn(2, 10, 36)).shape == (2, 10, 16)
