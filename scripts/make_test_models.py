"""Regenerate the real-weight test networks in tests/models/data/ (a dev-time script).

    pip install torch==2.13.0        # CPU build; only this script needs torch
    python scripts/make_test_models.py

Three small networks with seeded random weights (torch.manual_seed + default init; BatchNorm
affine parameters and running statistics are randomized too, so that BN folding changes the
numbers). Each is exported with torch.onnx.export (TorchScript exporter, dynamo=False): opset
17, static shapes, batch 1, do_constant_folding=True, eval mode. The two CNNs keep their
BatchNormalization nodes (TrainingMode.PRESERVE skips the exporter's own conv+BN fusion) so
that nnbuild's folding is exercised. Running the script twice writes byte-identical files.

resnet_small.onnx      input "input" float32[1,3,32,32] -> "logits" [1,10]
    conv-bn-relu stem, two stages of residual basic blocks, each stage opening with a stride-2
    block with a 1x1 projection shortcut; global average pool; linear.
    ONNX ops: Add, BatchNormalization, Conv, Flatten, Gemm, GlobalAveragePool, Relu

mobilenet_small.onnx   input "input" float32[1,3,32,32] -> "logits" [1,10]
    MobileNetV2-style inverted residuals: 1x1 expand, depthwise 3x3, 1x1 project, ReLU6, a
    residual add where shapes allow; HardSwish in the last 1x1 conv; global average pool; linear.
    ONNX ops: Add, BatchNormalization, Clip (min/max from Constant nodes), Constant,
              Conv (group=1 and depthwise group=C), Flatten, Gemm, GlobalAveragePool,
              HardSwish

transformer_small.onnx input "tokens" int64[1,16] -> "logits" [1,16,32]
    token embedding (Gather) + learned position embedding, 2 pre-norm encoder layers with
    hand-written 4-head self-attention (batch_first layout, LayerNorm, GELU MLP, residuals),
    final LayerNorm and a linear head.
    ONNX ops: Add, Constant (reshape shapes, scalars), Div, Erf, Gather, LayerNormalization,
              MatMul (3-D x 2-D for the linears, 4-D batched for attention), Mul, Reshape,
              Softmax, Transpose

The op lists above are checked when the script runs (it fails if an export drifts).
"""
from __future__ import annotations

import collections
import io
import os
import sys
import warnings

import numpy as np
import onnx
import torch
from torch import nn

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests", "models",
                       "data")
OPSET = 17
MAX_BYTES = 1 << 20

EXPECTED_OPS = {
    "resnet_small": {"Add", "BatchNormalization", "Conv", "Flatten", "Gemm",
                     "GlobalAveragePool", "Relu"},
    "mobilenet_small": {"Add", "BatchNormalization", "Clip", "Constant", "Conv", "Flatten",
                        "Gemm", "GlobalAveragePool", "HardSwish"},
    "transformer_small": {"Add", "Constant", "Div", "Erf", "Gather", "LayerNormalization",
                          "MatMul", "Mul", "Reshape", "Softmax", "Transpose"},
}


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(c, generator=generator) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)


# --- (a) ResNet-style ------------------------------------------------------------------------

class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ResNetSmall(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU())
        self.stage1 = nn.Sequential(BasicBlock(16, 16, 1), BasicBlock(16, 32, 2))
        self.stage2 = nn.Sequential(BasicBlock(32, 32, 1), BasicBlock(32, 64, 2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.stage2(self.stage1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


# --- (b) MobileNetV2-style -------------------------------------------------------------------

def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
            act: type | None = nn.ReLU6) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1),                            # expand
            conv_bn(hidden, hidden, 3, stride, groups=hidden),  # depthwise 3x3
            conv_bn(hidden, cout, 1, act=None))                 # linear projection

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_residual else y


class MobileNetSmall(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2),
            InvertedResidual(16, 16, 1, 1),
            InvertedResidual(16, 24, 2, 4),
            InvertedResidual(24, 24, 1, 4),
            InvertedResidual(24, 32, 2, 4),
            InvertedResidual(32, 32, 1, 4),
            conv_bn(32, 96, 1, act=nn.Hardswish))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(96, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


# --- (c) transformer encoder -----------------------------------------------------------------

class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):                                   # x: [batch, seq, dim]
        b, s, d = x.shape

        def split(t):                                       # -> [batch, heads, seq, head_dim]
            return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / float(np.sqrt(self.head_dim))
        y = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerSmall(nn.Module):
    def __init__(self, vocab: int = 100, seq: int = 16, dim: int = 64, heads: int = 4,
                 hidden: int = 128, layers: int = 2, classes: int = 32):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, seq, dim) * 0.1)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads, hidden) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, tokens):
        return self.head(self.norm(self.layers(self.embed(tokens) + self.pos)))


def randomize_layernorm(model: nn.Module, generator: torch.Generator) -> None:
    """LayerNorm starts as scale 1, bias 0; make it non-trivial."""
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)


# --- export ----------------------------------------------------------------------------------

def export(model: nn.Module, example: torch.Tensor, input_name: str, output_name: str,
           keep_batchnorm: bool) -> bytes:
    """ONNX bytes of ``model`` in eval mode. With ``keep_batchnorm`` the exporter's own
    conv+BN fusion (its eval peephole) is skipped, so BatchNormalization nodes (inference form,
    training_mode=0) reach nnbuild and its folding pass is what gets tested."""
    model.eval()
    mode = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the exporter warns about constant folding in PRESERVE mode for models in training
        # mode, and about the TorchScript exporter being legacy; neither applies here
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), buffer, opset_version=OPSET,
                          do_constant_folding=True, training=mode, input_names=[input_name],
                          output_names=[output_name], dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    proto.producer_version = ""      # keep the file independent of the torch patch version
    return proto.SerializeToString()


def networks():
    """(file stem, module, example input, input name, output name, keep_batchnorm); seeded."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    resnet = ResNetSmall()
    randomize_batchnorm(resnet, g)
    yield "resnet_small", resnet, torch.randn(1, 3, 32, 32), "input", "logits", True

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    mobilenet = MobileNetSmall()
    randomize_batchnorm(mobilenet, g)
    yield "mobilenet_small", mobilenet, torch.randn(1, 3, 32, 32), "input", "logits", True

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    transformer = TransformerSmall()
    randomize_layernorm(transformer, g)
    tokens = torch.randint(0, 100, (1, 16))
    yield "transformer_small", transformer, tokens, "tokens", "logits", False


def main() -> int:
    os.makedirs(OUT_DIR, exist_ok=True)
    problems = []
    for stem, module, example, input_name, output_name, keep_bn in networks():
        data = export(module, example, input_name, output_name, keep_bn)
        path = os.path.normpath(os.path.join(OUT_DIR, f"{stem}.onnx"))
        with open(path, "wb") as f:
            f.write(data)
        ops = collections.Counter(n.op_type for n in onnx.load_from_string(data).graph.node)
        print(f"{path}: {len(data)} bytes, ops {dict(sorted(ops.items()))}")
        if set(ops) != EXPECTED_OPS[stem]:
            problems.append(f"{stem}: ops {sorted(ops)} != documented {sorted(EXPECTED_OPS[stem])}")
        if len(data) > MAX_BYTES:
            problems.append(f"{stem}: {len(data)} bytes, more than {MAX_BYTES}")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
