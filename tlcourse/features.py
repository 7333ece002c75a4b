"""Fixed feature extraction: run a frozen backbone once, keep its outputs.

With a frozen backbone the features of an image never change, so computing
them once turns every later training epoch into a few matrix products on a
small table instead of a pass through millions of weights.

Example:
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    >>> ds = TensorDataset(torch.randn(10, 3, 2, 2), torch.arange(10) % 2)
    >>> feats, labels = extract_features(net, ds, batch_size=4, progress=False)
    >>> feats.shape, labels.shape
    (torch.Size([10, 5]), torch.Size([10]))
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from .training import autocast, pick_device


@torch.inference_mode()
def extract_features(backbone: nn.Module | Callable, dataset: Dataset, batch_size: int = 64,
                     device: torch.device | None = None, progress: bool = True,
                     desc: str = "extracting features") -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, D) and labels (N,) of every item, in dataset order, backbone in eval mode."""
    device = device or pick_device()
    if isinstance(backbone, nn.Module):
        backbone.to(device).eval()
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
        with autocast(device):
            feats.append(backbone(x.to(device)).float().flatten(1).cpu())
        labels.append(torch.as_tensor(y))
    return torch.cat(feats), torch.cat(labels)


def feature_loader(features: torch.Tensor, labels: torch.Tensor, batch_size: int = 32,
                   shuffle: bool = True) -> DataLoader:
    """A DataLoader over cached features, ready for :func:`tlcourse.training.fit`."""
    return DataLoader(TensorDataset(features, labels), batch_size=batch_size, shuffle=shuffle)
