"""ResConv: the logbook's residual image-to-image CNN (seed-spec §2).

A stack of Conv2d layers and a mirrored ConvTranspose2d decoder. Decoder layer
j >= 2 receives the previous decoder output plus ``residual_weight`` times the
encoder output of the mirrored depth (a U-Net without pooling and with additive
skips). The architecture itself comes from ``core.params.layer_plan`` so the
analytic parameter count and the built model cannot disagree.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import RunConfig
from core.params import LayerSpec, layer_plan


class ConvLayer(nn.Module):
    """[BN pos 0] -> conv -> [size fix] -> [BN pos 1] -> [activation] -> [BN pos 2].

    ``copies`` > 1 (``core.stack``): that many independent layers side by side, with
    ``copies`` times the channels and the convolution grouped ``copies`` ways, so copy
    k sees only its own channels (BatchNorm and activations work per channel anyway).
    """

    def __init__(self, spec: LayerSpec, copies: int = 1) -> None:
        super().__init__()
        conv_class = nn.ConvTranspose2d if spec.transposed else nn.Conv2d
        self.bn_position = spec.bn_position
        self.bn = (
            nn.BatchNorm2d(spec.bn_channels * copies) if spec.bn_position is not None else None
        )
        self.conv = conv_class(
            spec.in_channels * copies,
            spec.out_channels * copies,
            kernel_size=spec.kernel_size,
            stride=spec.stride,
            padding=spec.padding,
            groups=copies,
        )
        # Activations are built with torch.nn's defaults (GELU exact, PReLU one weight ...).
        self.act = getattr(nn, spec.activation)() if spec.activation else None

    def forward(self, x: torch.Tensor, target_size: tuple[int, int] | None = None) -> torch.Tensor:
        if self.bn is not None and self.bn_position == 0:
            x = self.bn(x)
        x = self.conv(x)
        if target_size is not None and tuple(x.shape[-2:]) != target_size:
            # Right/bottom zero-pad, or crop when negative (only with stride > 1).
            dh, dw = target_size[0] - x.shape[-2], target_size[1] - x.shape[-1]
            x = F.pad(x, (0, dw, 0, dh))
        if self.bn is not None and self.bn_position == 1:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        if self.bn is not None and self.bn_position == 2:
            x = self.bn(x)
        return x


class ResConv(nn.Module):
    """Input (B, 1, H, W) in [0, 1] -> output (B, 1, H, W) through a final Sigmoid.

    ``copies`` > 1: that many independent models in one (``core.stack``), input and
    output (B, copies, H, W), channel k for copy k; the state dict has the same keys,
    each tensor ``copies`` times as long in its first dimension.
    """

    def __init__(self, config: RunConfig, copies: int = 1) -> None:
        super().__init__()
        encoder, decoder = layer_plan(config)
        self.residual_weight = float(config.residual_weight or 0.0)
        self.encoder = nn.ModuleDict(
            {f"layer_{i}": ConvLayer(s, copies) for i, s in enumerate(encoder, 1)}
        )
        self.decoder = nn.ModuleDict(
            {f"layer_{j}": ConvLayer(s, copies) for j, s in enumerate(decoder, 1)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # e_0 = x, e_i = Enc_i(e_{i-1}); the raw input is never added back.
        encoded = [x]
        for layer in self.encoder.values():
            encoded.append(layer(encoded[-1]))
        depth = len(self.decoder)
        y = encoded[-1]
        for j, layer in enumerate(self.decoder.values(), 1):
            skip = encoded[depth - j]  # e_{L-j}: the mirrored encoder output
            y = layer(y, target_size=tuple(skip.shape[-2:]))
            if j < depth:
                y = y + self.residual_weight * skip
        return y


def build_model(config: RunConfig) -> ResConv:
    return ResConv(config)


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
