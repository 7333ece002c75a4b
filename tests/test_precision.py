"""Mixed precision: bfloat16 only on GPUs that compute it natively, float16 with loss scaling
on older tensor-core GPUs (the T4 of Colab and Kaggle), float32 elsewhere.

There is no GPU here, so the GPU's compute capability is faked (monkeypatch), and the
float16 / bfloat16 training step runs on the CPU, where autocast supports both types.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.infra import device as dev
from tlcourse import training

CUDA = torch.device("cuda")


@pytest.fixture
def gpu(monkeypatch):
    """Pretend a CUDA GPU of a given compute capability is present."""
    monkeypatch.delenv("TLCOURSE_PRECISION", raising=False)

    def fake(major: int, minor: int) -> None:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    return fake


@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available")
@pytest.mark.parametrize("capability, expected", [
    ((9, 0), torch.bfloat16),   # H100
    ((8, 9), torch.bfloat16),   # L4, RTX 40xx
    ((8, 0), torch.bfloat16),   # A100
    ((7, 5), torch.float16),    # T4 (Colab, Kaggle): bf16 only emulated
    ((7, 0), torch.float16),    # V100
    ((6, 0), None),             # P100: no tensor cores, float32
    ((3, 7), None),             # K80
], ids=["H100", "L4", "A100", "T4", "V100", "P100", "K80"])
def test_precision_follows_the_gpu(gpu, capability, expected):
    gpu(*capability)
    assert dev.amp_dtype(CUDA) is expected
    assert (dev.grad_scaler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), CUDA)
            is not None) == (expected is torch.float16), "a loss scaler exactly when training in float16"


def test_cpu_and_mps_stay_in_float32(gpu):
    gpu(9, 0)
    assert dev.amp_dtype(torch.device("cpu")) is None
    assert dev.amp_dtype(torch.device("mps")) is None
    assert isinstance(dev.autocast(torch.device("cpu")), dev.nullcontext)


def test_environment_overrides_the_choice(gpu, monkeypatch):
    gpu(7, 5)
    monkeypatch.setenv("TLCOURSE_PRECISION", "fp32")
    assert dev.amp_dtype(CUDA) is None
    monkeypatch.setenv("TLCOURSE_PRECISION", "bf16")
    assert dev.amp_dtype(CUDA) is torch.bfloat16
    monkeypatch.setenv("TLCOURSE_PRECISION", "half")
    with pytest.raises(ValueError, match="TLCOURSE_PRECISION"):
        dev.amp_dtype(CUDA)


def test_capability_rule_agrees_with_torch_where_torch_can_say(gpu):
    """torch's own answer (``including_emulation=False``) when a real GPU is present."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU: the capability table above is the test")
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    assert (dev.amp_dtype(CUDA) is torch.bfloat16) == native


def toy_problem():
    dev.seed_everything(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return model, loader


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["fp16", "bf16"])
def test_fit_trains_in_the_chosen_precision_with_scaling_only_in_float16(monkeypatch, dtype):
    """The fit loop's step under each policy, run on the CPU (autocast supports both types there)."""
    monkeypatch.setattr(dev, "amp_dtype", lambda device: dtype)
    model, loader = toy_problem()
    seen = []

    def loss_fn(logits, labels):
        seen.append(logits.dtype)
        return torch.nn.functional.cross_entropy(logits, labels)

    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    history = training.fit(model, loader, loader, opt, epochs=4, loss_fn=loss_fn, progress=False,
                           device=torch.device("cpu"))
    assert set(seen) == {dtype}, "the forward pass ran under autocast in that type"
    assert history.best_val_acc > 0.9, history.val_acc
    scaler = dev._SCALERS.get(opt)
    if dtype is torch.float16:
        assert scaler is not None and scaler.is_enabled(), "float16 steps go through a GradScaler"
        assert scaler.get_scale() > 0 and scaler._scale is not None, "the scaler was used and kept its scale"
    else:
        assert scaler is None, "bfloat16 needs no loss scaling"
    assert all(p.dtype is torch.float32 for p in model.parameters()), "weights stay float32 (master copy)"


def test_float16_step_skips_a_step_whose_gradients_overflowed(monkeypatch):
    monkeypatch.setattr(dev, "amp_dtype", lambda device: torch.float16)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    dev.optimizer_step((w * float("inf")).sum(), opt, torch.device("cpu"))
    assert torch.equal(w.detach(), torch.ones(3)), "an inf gradient must not reach the weights"
    scale = dev._SCALERS[opt].get_scale()
    opt.zero_grad()
    dev.optimizer_step((w * 2).sum(), opt, torch.device("cpu"), clip_norm=1.0)
    assert torch.allclose(w.detach(), torch.ones(3) - 0.1 / 3 ** 0.5 * torch.ones(3), atol=1e-4), \
        "the clipped, unscaled gradient (norm 1) was applied"
    assert dev._SCALERS[opt].get_scale() == scale, "no overflow: the scale waits before growing"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (make test-gpu runs this on one)")
@pytest.mark.parametrize("choice", ["bf16", "fp16"])
def test_fit_on_the_gpu_in_each_precision(monkeypatch, choice):
    """On a real GPU: the forward in that type, a GradScaler exactly in fp16, the metrics on the GPU."""
    if choice == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no native bfloat16: the course trains it in fp16")
    monkeypatch.setenv("TLCOURSE_PRECISION", choice)
    model, loader = toy_problem()
    seen = []

    def loss_fn(logits, labels):
        seen.append((logits.dtype, logits.device.type))
        return torch.nn.functional.cross_entropy(logits, labels)

    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    steps = dev.usage["step:cuda"]
    history = training.fit(model, loader, loader, opt, epochs=4, loss_fn=loss_fn, progress=False, device=CUDA)
    assert set(seen) == {(dev.PRECISIONS[choice], "cuda")}
    assert dev.usage["step:cuda"] - steps == 4 * len(loader), "every step counted on the GPU"
    assert (dev._SCALERS.get(opt) is not None) == (choice == "fp16")
    assert history.best_val_acc > 0.9, history.val_acc
