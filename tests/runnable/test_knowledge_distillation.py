"""Knowledge distillation runnable: tiny gate, the KD loss against torch's KL divergence, the T^2 claim of §2.1."""

import torch
import torch.nn.functional as F

from tests.conftest import runnable

K = runnable("knowledge-distillation")


def test_tiny_soft_targets_beat_hard_labels_on_held_out_digits():
    r = K.train(K.PRESETS["tiny"])
    assert r["passed"], r
    assert r["value"] >= K.GATE[2]
    assert (
        r["distilled_accuracy"] - r["plain_accuracy"] == r["value"] and r["teacher_accuracy"] > 0.95
    )


def test_kd_loss_equals_torch_kl_div_times_t_squared():
    torch.manual_seed(0)
    z_s, z_t = torch.randn(16, 10) * 3, torch.randn(16, 10) * 3
    for T in (1.0, 2.0, 7.5):
        theirs = (
            F.kl_div(F.log_softmax(z_s / T, -1), F.softmax(z_t / T, -1), reduction="batchmean")
            * T
            * T
        )
        assert abs(K.kd_loss(z_s, z_t, T).item() - theirs.item()) <= 1e-6


def soft_ce_grad(z, v, T):
    """Gradient of the cross-entropy with soft targets (one example) w.r.t. the student logits z."""
    z = z.clone().requires_grad_()
    (-(K.soft_targets(v, T) * F.log_softmax(z / T, -1)).sum()).backward()
    return z.grad


def test_gradient_of_soft_term_is_q_minus_p_over_t_and_shrinks_as_one_over_t_squared():
    torch.manual_seed(0)
    N = 10
    z, v = torch.randn(N), torch.randn(N)
    z, v = z - z.mean(), v - v.mean()  # §2.1: logits with zero mean per example
    for T in (2.0, 5.0):  # Eq. 2: dC/dz_i = (q_i - p_i) / T, exactly
        exact = (K.soft_targets(z, T) - K.soft_targets(v, T)) / T
        assert (soft_ce_grad(z, v, T) - exact).abs().max() <= 1e-6
    T = 50.0  # Eq. 4: at high T, dC/dz_i ~ (z_i - v_i) / (N T^2)
    g = soft_ce_grad(z, v, T)
    approx = (z - v) / (N * T * T)
    assert ((g - approx).norm() / approx.norm()).item() < 0.02
    # hence multiplying the soft term by T^2 keeps its gradient the same size whatever T is
    sizes = [(T * T * soft_ce_grad(z, v, T)).norm().item() for T in (10.0, 20.0, 40.0)]
    assert max(sizes) / min(sizes) < 1.02
    unscaled = [soft_ce_grad(z, v, T).norm().item() for T in (10.0, 20.0, 40.0)]
    assert unscaled[0] / unscaled[2] > 14  # without T^2 it shrinks ~16x from T = 10 to 40


def test_distillation_loss_mixes_soft_and_hard_terms():
    torch.manual_seed(0)
    z_s, z_t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(10, (8,))
    got = K.distillation_loss(z_s, z_t, y, T=3.0, alpha=0.7)
    assert torch.isclose(got, 0.7 * K.kd_loss(z_s, z_t, 3.0) + 0.3 * F.cross_entropy(z_s, y))
    assert K.kd_loss(z_t, z_t, 3.0).abs() <= 1e-6  # zero when the student equals the teacher


def test_paper_preset_is_the_mnist_nets_of_section_3():
    with torch.device("meta"):
        nets = K.build_model(K.PRESETS["paper"])
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(nets["teacher"]) == 784 * 1200 + 1200 + 1200 * 1200 + 1200 + 1200 * 10 + 10
    assert count(nets["student"]) == 784 * 800 + 800 + 800 * 800 + 800 + 800 * 10 + 10
