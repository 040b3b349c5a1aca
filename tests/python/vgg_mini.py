"""vgg-mini in PyTorch, the layout (and state-dict names) of glassbox's vgg-mini / vgg-mini-bn:
used by the reference generator (make_references.py) and the Python module's tests (tests/pytest)."""
import torch
from torch import nn


class VGGMini(nn.Module):
    """vgg-mini (bn=False) and vgg-mini-bn (bn=True): 1x28x28 -> 10 classes."""

    def __init__(self, bn):
        super().__init__()
        layers, c_in = [], 1
        for block in ((32, 32), (64, 64)):
            for c_out in block:
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1))
                if bn:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU())
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))
