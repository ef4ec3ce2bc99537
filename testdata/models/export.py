#!/usr/bin/python3
"""Generate the ONNX test fixtures in testdata/models/.

Run from the repository root with Debian's Python (torch 1.13, torchvision
0.14, onnx 1.12, numpy):

    /usr/bin/python3 testdata/models/export.py

The script is deterministic and idempotent: every model is built under its
own torch.manual_seed, runs on the CPU in float32, and every file is
rewritten from scratch on each run (re-running produces byte-identical
files). See README.md in this directory for a description of every fixture.

Besides exporting, the script checks every exported file with
onnx.checker.check_model and re-evaluates it with a small numpy reference
interpreter (defined below; onnx.reference does not exist in onnx 1.12 and
onnxruntime is not available) against the PyTorch output, so every
`<name>*.onnx` variant is known to agree with `<name>.output.npy`.
"""

import collections
import copy
import hashlib
import io
import math
import os
import sys
import warnings
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.init as init
import torchvision

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OPSET = torch.onnx._constants.ONNX_DEFAULT_OPSET  # 14 for torch 1.13

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
warnings.filterwarnings("ignore")


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------


class LeNet5(nn.Module):
    """LeNet-5 for 1x28x28 MNIST, 10 classes, no BatchNorm. widths are the
    channels of conv1 and conv2 and the units of fc1 and fc2."""

    def __init__(self, widths=(6, 16, 120, 84)):
        super().__init__()
        c1, c2, f1, f2 = widths
        self.conv1 = nn.Conv2d(1, c1, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.fc1 = nn.Linear(c2 * 5 * 5, f1)
        self.fc2 = nn.Linear(f1, f2)
        self.fc3 = nn.Linear(f2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# --- CIFAR ResNet, verbatim structure of akamaster/pytorch_resnet_cifar10 ---


def _weights_init(m):
    if isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d):
        init.kaiming_normal_(m.weight)


class LambdaLayer(nn.Module):
    def __init__(self, lambd):
        super(LambdaLayer, self).__init__()
        self.lambd = lambd

    def forward(self, x):
        return self.lambd(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, option="A"):
        super(BasicBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)

        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if option == "A":
                # For CIFAR10 ResNet paper uses option A.
                self.shortcut = LambdaLayer(
                    lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4), "constant", 0)
                )
            elif option == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(self.expansion * planes),
                )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        return out


class ResNet(nn.Module):
    # width (the first stage's channels; akamaster: 16) and in_ch are ours,
    # for the width-multiplier baselines and 1-channel Fashion-MNIST. Option
    # A's shortcut pads planes//4 channels on each side, so width must be even.
    def __init__(self, block, num_blocks, num_classes=10, option="A", width=16, in_ch=3):
        super(ResNet, self).__init__()
        assert width % 2 == 0 or option != "A"
        self.in_planes = width
        self.option = option

        self.conv1 = nn.Conv2d(in_ch, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = self._make_layer(block, width, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, num_blocks[2], stride=2)
        self.linear = nn.Linear(4 * width, num_classes)

        self.apply(_weights_init)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride, self.option))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        # akamaster writes F.avg_pool2d(out, out.size()[3]). Under tracing the
        # size is a 0-d tensor, which Debian's torch 1.13 (Python 3.11) rejects
        # as kernel_size ("must be tuple of ints, not Tensor"); int() bakes in
        # the same constant kernel (8) that upstream's __index__ path does.
        out = F.avg_pool2d(out, int(out.size()[3]))
        out = out.view(out.size(0), -1)
        out = self.linear(out)
        return out


def resnet8(option):
    return ResNet(BasicBlock, [1, 1, 1], option=option)


def resnet20(option, width=16, in_ch=3):
    return ResNet(BasicBlock, [3, 3, 3], option=option, width=width, in_ch=in_ch)


# --- tiny MobileNetV3 ---


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class SqueezeExciteV3(nn.Module):
    """AdaptiveAvgPool -> 1x1 conv -> ReLU -> 1x1 conv -> Hardsigmoid -> Mul."""

    def __init__(self, ch):
        super().__init__()
        sq = _make_divisible(ch // 4, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(ch, sq, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(sq, ch, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * s


class InvertedResidualV3(nn.Module):
    def __init__(self, cin, cexp, cout, k, stride, use_se, act):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = []
        if cexp != cin:
            layers += [nn.Conv2d(cin, cexp, 1, bias=False), nn.BatchNorm2d(cexp), act()]
        layers += [
            nn.Conv2d(cexp, cexp, k, stride, (k - 1) // 2, groups=cexp, bias=False),
            nn.BatchNorm2d(cexp),
            act(),
        ]
        if use_se:
            layers.append(SqueezeExciteV3(cexp))
        layers += [nn.Conv2d(cexp, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        if self.use_res:
            y = y + x
        return y


class MobileNetV3Tiny(nn.Module):
    # cin, cexp, cout, kernel, stride, SE, activation
    CFG = [
        (16, 16, 16, 3, 1, True, nn.ReLU),  # 16x16, no expand conv, residual
        (16, 48, 24, 3, 2, False, nn.ReLU),  # -> 8x8
        (24, 72, 24, 3, 1, False, nn.ReLU),  # residual
        (24, 72, 40, 5, 2, True, nn.Hardswish),  # -> 4x4
        (40, 120, 40, 5, 1, True, nn.Hardswish),  # residual
    ]

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish()
        )
        self.blocks = nn.Sequential(*[InvertedResidualV3(*c) for c in self.CFG])
        self.head = nn.Sequential(nn.Conv2d(40, 120, 1, bias=False), nn.BatchNorm2d(120), nn.Hardswish())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(120, 96), nn.Hardswish(), nn.Dropout(0.2), nn.Linear(96, num_classes)
        )

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.classifier(x)


# --- tiny EfficientNet ---


class SqueezeExciteEff(nn.Module):
    """AdaptiveAvgPool -> 1x1 conv -> SiLU -> 1x1 conv -> Sigmoid -> Mul."""

    def __init__(self, ch, sq):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(ch, sq, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(sq, ch, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, k, stride, se_ratio=0.25):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        cexp = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, cexp, 1, bias=False), nn.BatchNorm2d(cexp), nn.SiLU()]
        layers += [
            nn.Conv2d(cexp, cexp, k, stride, k // 2, groups=cexp, bias=False),
            nn.BatchNorm2d(cexp),
            nn.SiLU(),
            SqueezeExciteEff(cexp, max(1, int(cin * se_ratio))),
            nn.Conv2d(cexp, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        if self.use_res:
            y = y + x
        return y


class EfficientNetTiny(nn.Module):
    # cin, cout, expand, kernel, stride
    CFG = [
        (16, 16, 1, 3, 1),  # 16x16, residual, no expand conv
        (16, 24, 4, 3, 2),  # -> 8x8
        (24, 24, 4, 3, 1),  # residual
        (24, 40, 4, 5, 2),  # -> 4x4
        (40, 40, 3, 5, 1),  # residual
    ]

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.SiLU())
        self.blocks = nn.Sequential(*[MBConv(*c) for c in self.CFG])
        self.head = nn.Sequential(nn.Conv2d(40, 160, 1, bias=False), nn.BatchNorm2d(160), nn.SiLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(160, num_classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.dropout(x))


class MLP(nn.Module):
    """784 -> 128 -> ReLU -> 64 -> ReLU -> 10 with explicit matmul + add (MatMul+Add, not Gemm)."""

    def __init__(self):
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(784, 128) / math.sqrt(784))
        self.b1 = nn.Parameter(torch.randn(128) * 0.1)
        self.W2 = nn.Parameter(torch.randn(128, 64) / math.sqrt(128))
        self.b2 = nn.Parameter(torch.randn(64) * 0.1)
        self.W3 = nn.Parameter(torch.randn(64, 10) / math.sqrt(64))
        self.b3 = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = torch.flatten(x, 1)  # input is Nx1x28x28
        x = F.relu(torch.matmul(x, self.W1) + self.b1)
        x = F.relu(torch.matmul(x, self.W2) + self.b2)
        return torch.matmul(x, self.W3) + self.b3


class SharedBias(nn.Module):
    """Two convs whose biases are exactly zero: torch 1.13 deduplicates the
    equal-valued initializers and emits Identity(c1.bias) -> c2.bias."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 1)
        self.c2 = nn.Conv2d(8, 8, 1)
        with torch.no_grad():
            self.c1.bias.zero_()
            self.c2.bias.zero_()

    def forward(self, x):
        return self.c2(F.relu(self.c1(x)))


def randomize_bn(model, seed):
    """Give every BatchNorm non-trivial affine params and running stats."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))  # [0.5, 1.5)
                m.bias.copy_(0.2 * torch.randn(c, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=g))  # [0.5, 2.0)
    return model


def has_bn(model):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# (name, seed, constructor, input shape without batch)
MODELS = [
    ("lenet5", 1, LeNet5, (1, 28, 28)),
    ("resnet8a", 2, lambda: resnet8("A"), (3, 32, 32)),
    ("resnet8b", 3, lambda: resnet8("B"), (3, 32, 32)),
    ("mobilenetv2", 4, lambda: torchvision.models.mobilenet_v2(width_mult=0.35, num_classes=10), (3, 32, 32)),
    ("mobilenetv3_tiny", 5, MobileNetV3Tiny, (3, 32, 32)),
    ("efficientnet_tiny", 6, EfficientNetTiny, (3, 32, 32)),
    ("mlp", 7, MLP, (1, 28, 28)),
    # Benchmark model (bench/): only its BN-kept export, in big/.
    ("resnet20", 9, lambda: resnet20("A"), (3, 32, 32)),
]
BATCH = 2


# ---------------------------------------------------------------------------
# Minimal numpy ONNX interpreter (float64 internally) used only for checking.
# ---------------------------------------------------------------------------


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _conv(x, w, b, a):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    group = a.get("group", 1)
    s = a.get("strides", [1, 1])
    d = a.get("dilations", [1, 1])
    p = a.get("pads", [0, 0, 0, 0])
    assert a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    x = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    ho = (h + p[0] + p[2] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (wd + p[1] + p[3] - d[1] * (kw - 1) - 1) // s[1] + 1
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i * d[0] : i * d[0] + s[0] * (ho - 1) + 1 : s[0],
                                 j * d[1] : j * d[1] + s[1] * (wo - 1) + 1 : s[1]]
    cols = cols.reshape(n, group, cg, kh, kw, ho, wo)
    wg = w.reshape(group, m // group, cg, kh, kw)
    y = np.einsum("ngcklhw,gmckl->ngmhw", cols, wg, optimize=True).reshape(n, m, ho, wo)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def _pool(x, a, kind):
    k = a["kernel_shape"]
    s = a.get("strides", [1, 1])
    p = a.get("pads", [0, 0, 0, 0])
    assert a.get("ceil_mode", 0) == 0 and a.get("dilations", [1, 1]) == [1, 1]
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])), constant_values=fill)
    ho = (h + p[0] + p[2] - k[0]) // s[0] + 1
    wo = (w + p[1] + p[3] - k[1]) // s[1] + 1
    win = np.stack([xp[:, :, i : i + s[0] * (ho - 1) + 1 : s[0], j : j + s[1] * (wo - 1) + 1 : s[1]]
                    for i in range(k[0]) for j in range(k[1])])
    if kind == "max":
        return win.max(0)
    assert a.get("count_include_pad", 0) == 1 or not any(p)
    return win.mean(0)


def _slice(x, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else [int(v) % x.ndim for v in axes]
    steps = [1] * len(starts) if steps is None else steps
    idx = [slice(None)] * x.ndim
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        dim = x.shape[ax]
        st, en, sp = int(st), int(en), int(sp)
        st = max(min(st + dim if st < 0 else st, dim), 0)
        en = en + dim if en < 0 else en
        en = max(min(en, dim), 0) if sp > 0 else max(min(en, dim - 1), -1)
        idx[ax] = slice(st, en if en >= 0 else None, sp)
    return x[tuple(idx)]


def run_onnx(model, feeds):
    """Evaluate an onnx ModelProto on numpy inputs; returns dict of outputs."""
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    env = {}
    for t in model.graph.initializer:
        env[t.name] = numpy_helper.to_array(t)
    for k, v in feeds.items():
        env[k] = v.astype(np.float64) if v.dtype == np.float32 else v
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(a["value"])
        elif op == "Identity":
            out = ins[0]
        elif op == "Conv":
            out = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "BatchNormalization":
            x, sc, bi, mean, var = ins
            assert a.get("training_mode", 0) == 0
            sh = (1, -1) + (1,) * (x.ndim - 2)
            out = (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) * sc.reshape(sh) + bi.reshape(sh)
        elif op == "Relu":
            out = np.maximum(ins[0], 0)
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", -np.inf)
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", np.inf)
            out = np.clip(ins[0], lo, hi)
        elif op == "Sigmoid":
            out = 1.0 / (1.0 + np.exp(-ins[0]))
        elif op == "HardSigmoid":
            out = np.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish":
            out = ins[0] * np.clip(ins[0] / 6.0 + 0.5, 0, 1)
        elif op == "MaxPool":
            out = _pool(ins[0], a, "max")
        elif op == "AveragePool":
            out = _pool(ins[0], a, "avg")
        elif op == "GlobalAveragePool":
            out = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Reshape":
            shape = [ins[0].shape[i] if (v == 0 and not a.get("allowzero", 0)) else int(v)
                     for i, v in enumerate(ins[1])]
            out = ins[0].reshape(shape)
        elif op == "Shape":
            out = np.array(ins[0].shape, dtype=np.int64)
        elif op == "Gather":
            out = np.take(ins[0], ins[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = a["axes"] if opset < 13 else list(ins[1])
            out = ins[0]
            for ax in sorted(int(v) % (out.ndim + len(axes)) for v in axes):
                out = np.expand_dims(out, ax)
        elif op == "Concat":
            out = np.concatenate([np.atleast_1d(v) for v in ins], axis=a["axis"])
        elif op == "Slice":
            if opset < 10:
                out = _slice(ins[0], a["starts"], a["ends"], a.get("axes"))
            else:
                out = _slice(ins[0], ins[1], ins[2], ins[3] if len(ins) > 3 else None,
                             ins[4] if len(ins) > 4 else None)
        elif op == "Pad":
            mode = a.get("mode", b"constant")
            assert mode in (b"constant", "constant")
            pads = [int(v) for v in ins[1]]
            cval = ins[2] if len(ins) > 2 and ins[2] is not None else 0.0
            r = ins[0].ndim
            pw = [(pads[i], pads[i + r]) for i in range(r)]
            assert min(pads) >= 0
            out = np.pad(ins[0], pw, constant_values=np.asarray(cval).item())
        elif op == "Gemm":
            A = ins[0].T if a.get("transA", 0) else ins[0]
            B = ins[1].T if a.get("transB", 0) else ins[1]
            out = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            out = ins[0] @ ins[1]
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Sub":
            out = ins[0] - ins[1]
        elif op == "Mul":
            out = ins[0] * ins[1]
        elif op == "Div":
            out = ins[0] / ins[1]
        elif op == "ConstantOfShape":
            val = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
            out = np.full([int(v) for v in ins[0]], val.reshape(-1)[0], dtype=val.dtype)
        elif op == "Transpose":
            out = np.transpose(ins[0], a.get("perm"))
        elif op == "Cast":
            out = ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])
        elif op == "Dropout":
            out = ins[0]
        elif op == "Where":
            out = np.where(ins[0], ins[1], ins[2])
        else:
            raise NotImplementedError("numpy reference: op %s" % op)
        env[node.output[0]] = out
    return {o.name: env[o.name] for o in model.graph.output}


# ---------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------


def export(model, x, path, **kw):
    kw.setdefault("do_constant_folding", True)
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["output"], **kw)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def check_against(m, x, y, label):
    got = run_onnx(m, {"input": x})["output"]
    err = np.max(np.abs(got - y.astype(np.float64)))
    scale = max(1.0, float(np.max(np.abs(y))))
    if not err <= 1e-4 * scale:
        raise SystemExit("%s: numpy evaluation differs from PyTorch by %g" % (label, err))
    return err


# Variants regenerated on demand but not committed (total size budget).
BIG = {"mobilenetv2_bn.onnx", "resnet20_bn.onnx"}
# Models exported only as their BN-kept variant (the benchmark models; their
# .input.npy and .output.npy references still go next to the committed ones,
# where the tests that run every big/ model look for them).
BN_ONLY = {"resnet20"}


def build_models():
    written = []
    for name, seed, ctor, shape in MODELS:
        torch.manual_seed(seed)
        model = ctor()
        if has_bn(model):
            randomize_bn(model, seed + 1000)
        model.eval()

        rng = np.random.default_rng(seed)
        x_np = rng.standard_normal((BATCH,) + shape).astype(np.float32)
        x = torch.from_numpy(x_np)
        with torch.no_grad():
            y = model(x).numpy().astype(np.float32)
            y2 = model(x.clone()).numpy()
            traced = torch.jit.trace(model, x)
            y3 = traced(x).numpy()
        if not (np.array_equal(y, y2) and np.array_equal(y, y3)):
            raise SystemExit("%s: PyTorch output not deterministic" % name)
        np.save(os.path.join(OUT_DIR, name + ".input.npy"), x_np)
        np.save(os.path.join(OUT_DIR, name + ".output.npy"), y)
        written += [name + ".input.npy", name + ".output.npy"]

        nparams = sum(p.numel() for p in model.parameters())
        variants = [(name + ".onnx", {})]
        if has_bn(model):
            variants.append((name + "_bn.onnx", {"training": torch.onnx.TrainingMode.PRESERVE}))
        if name == "resnet8a":
            variants.append((name + "_dyn.onnx",
                             {"dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}}}))
        if name in ("lenet5", "resnet8a"):
            variants.append((name + "_op11.onnx", {"opset_version": 11}))
        if name in BN_ONLY:
            variants = [v for v in variants if v[0] == name + "_bn.onnx"]
        errs = []
        for fname, kw in variants:
            if fname in BIG:
                # Too large to commit with the rest; written to big/, which
                # git ignores, and tested when present.
                os.makedirs(os.path.join(OUT_DIR, "big"), exist_ok=True)
                fname = os.path.join("big", fname)
            m = export(model, x, os.path.join(OUT_DIR, fname), **kw)
            errs.append(check_against(m, x_np, y, fname))
            if "dynamic_axes" in kw:  # the dynamic model must also run at batch 1
                errs.append(check_against(m, x_np[:1], y[:1], fname + "@batch1"))
            written.append(fname)
        print("%-18s params=%-7d |y|max=%-8.3g max numpy-vs-torch err=%.2g"
              % (name, nparams, float(np.max(np.abs(y))), max(errs)))
        if name in TRAIN_REFS:
            written += build_train_ref(name, seed, model, x_np)
    return written


# ---------------------------------------------------------------------------
# Training references (PyTorch autograd + optimizers) -> <name>.train.npz
# ---------------------------------------------------------------------------

# name -> settings:
#   onnx:       the file whose initializer names key the npz (the export the Go side trains)
#   optims:     optimizer references in the committed file ("sgd": 1 SGD step, "adamw": 2 AdamW steps)
#   big_optims: optimizer references written only to the uncut copy big/<name>.train.npz
#   big:        the whole file goes to big/ only (git-ignored), for the size budget
TRAIN_REFS = {
    "lenet5": dict(onnx="lenet5.onnx", optims=("sgd", "adamw")),
    "mlp": dict(onnx="mlp.onnx", optims=()),
    "resnet8a": dict(onnx="resnet8a_bn.onnx", optims=(), big_optims=("sgd",)),
    "mobilenetv3_tiny": dict(onnx="mobilenetv3_tiny_bn.onnx", optims=()),
    "efficientnet_tiny": dict(onnx="efficientnet_tiny_bn.onnx", optims=(), big=True),
}
TRAIN_BATCH_FALLBACK = 4  # used if some BatchNorm would see <= 2 values per channel
OPTIMS = {
    # key: (class, kwargs, number of steps on the same batch)
    "sgd": (torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False), 1),
    "adamw": (torch.optim.AdamW, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), 2),
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def save_npz_deterministic(path, arrays):
    """Like np.savez_compressed, but byte-reproducible: fixed timestamps and
    attributes, entries in the given order, ZIP_DEFLATED level 9."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr, order="C"), allow_pickle=False)  # keeps 0-d arrays 0-d
            info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    back = np.load(path)
    assert list(back.files) == list(arrays.keys())
    assert all(back[k].dtype == v.dtype and np.array_equal(back[k], v) for k, v in arrays.items())


def _train_mode(model):
    """model.train(), but every Dropout in eval mode (identity): the Go side
    compares against a run without dropout masks."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    return model


def _bn_values_per_channel(model, x):
    """Smallest number of values any BatchNorm averages over per channel in a
    training-mode forward pass of x (N*H*W); None without BatchNorm."""
    counts = []
    m = _train_mode(copy.deepcopy(model))
    hooks = [mod.register_forward_hook(lambda mod, inp, out: counts.append(inp[0].numel() // inp[0].shape[1]))
             for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    return min(counts) if counts else None


def _forward_backward(model, x, labels):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return logits, loss


def _optimized_params(model, x, labels, optim):
    cls, kw, steps = OPTIMS[optim]
    m = _train_mode(copy.deepcopy(model))
    opt = cls(m.parameters(), **kw)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _forward_backward(m, x, labels)
        opt.step()
    return {k: v.detach().numpy().copy() for k, v in m.named_parameters()}


def _rel_l2(a, b):
    nb = float(np.linalg.norm(np.ravel(b)))
    d = float(np.linalg.norm(np.ravel(np.asarray(a, np.float64) - b)))
    return d / nb if nb > 0 else (0.0 if d == 0 else float("inf"))


def build_train_ref(name, seed, model, x_np):
    """Write <name>.train.npz: loss, gradients, BN running stats and optimizer
    results computed by PyTorch autograd for one fixed batch, keyed by ONNX
    initializer names. `model` is the (eval-mode) exported model; it is not
    modified. Returns the files written (relative to OUT_DIR)."""
    cfg = TRAIN_REFS[name]
    model = copy.deepcopy(model)

    # Batch: the saved batch-2 input unless some BN would see <= 2 values.
    x = x_np
    nvals = _bn_values_per_channel(model, torch.from_numpy(x))
    if nvals is not None and nvals <= 2:
        x = np.random.default_rng(seed + 3000).standard_normal(
            (TRAIN_BATCH_FALLBACK,) + x_np.shape[1:]).astype(np.float32)
        nvals = _bn_values_per_channel(model, torch.from_numpy(x))
        assert nvals > 2, name
    batch = x.shape[0]
    labels_np = np.random.default_rng(seed + 2000).integers(0, 10, size=batch, dtype=np.int64)
    xt, lt = torch.from_numpy(x), torch.from_numpy(labels_np)

    # Map PyTorch names to initializers of the ONNX file the Go side trains:
    # every parameter and BN statistic must be an initializer of the same name
    # holding the identical value, and every float initializer must be one of those.
    m_onnx = onnx.load(os.path.join(OUT_DIR, cfg["onnx"]))
    if any(n.op_type == "Identity" for n in m_onnx.graph.node):
        raise SystemExit("%s: Identity nodes (deduplicated initializers) need a name mapping" % cfg["onnx"])
    inits = {t.name: numpy_helper.to_array(t) for t in m_onnx.graph.initializer}
    params = dict(model.named_parameters())
    stats = {k: v for k, v in model.named_buffers() if k.endswith(("running_mean", "running_var"))}
    for k, v in list(params.items()) + list(stats.items()):
        if k not in inits or inits[k].shape != tuple(v.shape) or not np.array_equal(inits[k], v.detach().numpy()):
            raise SystemExit("%s: %s is not an identical initializer of %s" % (name, k, cfg["onnx"]))
    for k, v in inits.items():
        if v.dtype == np.float32 and k not in params and k not in stats:
            raise SystemExit("%s: float initializer %s of %s is neither a parameter nor a BN statistic"
                             % (name, k, cfg["onnx"]))

    # float32 training-mode forward/backward (BN batch statistics, no dropout) ...
    m32 = _train_mode(copy.deepcopy(model))
    logits, loss = _forward_backward(m32, xt, lt)
    # ... and the same in float64, only to measure how much float32 rounding matters.
    m64 = _train_mode(copy.deepcopy(model).double())
    _, loss64 = _forward_backward(m64, xt.double(), lt)

    out = collections.OrderedDict()
    out["input"] = x
    out["labels"] = labels_np
    out["loss"] = np.asarray(loss.item(), dtype=np.float32)
    out["logits"] = logits.detach().numpy().astype(np.float32)
    g32 = {k: p.grad.numpy().astype(np.float32) for k, p in m32.named_parameters()}
    g64 = {k: p.grad.numpy() for k, p in m64.named_parameters()}
    for k, g in g32.items():
        out["grad/" + k] = g
    s64 = dict(m64.named_buffers())
    for k, v in m32.named_buffers():
        if k in stats:
            out["running/" + k] = v.numpy().astype(np.float32)
    extra = collections.OrderedDict()
    for optim in tuple(cfg["optims"]) + tuple(cfg.get("big_optims", ())):
        dst = out if optim in cfg["optims"] else extra
        for k, v in _optimized_params(model, xt, lt, optim).items():
            dst[optim + "/" + k] = v

    # float32 vs float64. Gradients that are exactly zero in exact arithmetic
    # (a BN bias whose output only reaches training-mode BNs through convs and
    # residual adds: the shift cancels in the next BN's batch mean) are float
    # noise in both precisions; they are listed apart and left out of the max.
    all32 = np.concatenate([g.ravel() for g in g32.values()])
    all64 = np.concatenate([g.ravel() for g in g64.values()])
    gnorm = float(np.linalg.norm(all64))
    zero = [k for k in g64 if np.linalg.norm(g64[k]) <= 1e-9 * gnorm]
    rel = {k: _rel_l2(g32[k], g64[k]) for k in g32 if k not in zero}
    worst = max(rel, key=rel.get)
    st = dict(
        batch=batch, bn_values=nvals, loss=loss.item(), loss64=loss64.item(),
        grad_rel_max=rel[worst], grad_rel_worst=worst, grad_rel_all=_rel_l2(all32, all64),
        grad_abs_max=float(np.max(np.abs(all32 - all64)) / np.max(np.abs(all64))),
        zero=zero, zero_abs=max([float(np.max(np.abs(g32[k]))) / float(np.max(np.abs(all64))) for k in zero] or [0.0]),
        running_rel_max=max([_rel_l2(out["running/" + k], s64[k].numpy()) for k in stats] or [0.0]),
    )
    for optim in tuple(cfg["optims"]) + tuple(cfg.get("big_optims", ())):
        p64 = _optimized_params(copy.deepcopy(model).double(), xt.double(), lt, optim)
        src = out if optim in cfg["optims"] else extra
        st[optim + "_abs_max"] = max(float(np.max(np.abs(src[optim + "/" + k] - p64[k]))) for k in p64)

    # every key names an initializer of the same shape; every parameter has a grad.
    for k, v in list(out.items()) + list(extra.items()):
        if "/" in k:
            init_name = k.split("/", 1)[1]
            assert init_name in inits and inits[init_name].shape == v.shape and v.dtype == np.float32, k
    assert set("grad/" + k for k in params) == set(k for k in out if k.startswith("grad/"))
    assert set("running/" + k for k in stats) == set(k for k in out if k.startswith("running/"))

    fname = name + ".train.npz"
    written = []
    if not cfg.get("big"):
        save_npz_deterministic(os.path.join(OUT_DIR, fname), out)
        written.append(fname)
    if cfg.get("big") or extra:
        os.makedirs(os.path.join(OUT_DIR, "big"), exist_ok=True)
        full = collections.OrderedDict(list(out.items()) + list(extra.items()))
        save_npz_deterministic(os.path.join(OUT_DIR, "big", fname), full)
        written.append(os.path.join("big", fname))
    print("  train ref: batch=%d (min BN values/channel %s) loss=%.7g (f64 %.7g)"
          % (batch, nvals, st["loss"], st["loss64"]))
    print("    grad f32 vs f64: per-param rel L2 max %.2e (%s), whole-model rel L2 %.2e, "
          "max|diff|/max|g| %.2e" % (st["grad_rel_max"], st["grad_rel_worst"], st["grad_rel_all"], st["grad_abs_max"]))
    if zero:
        print("    zero in exact arithmetic (max|g32|/max|g| %.1e): %s" % (st["zero_abs"], " ".join(zero)))
    print("    running stats rel L2 max %.2e;%s" % (st["running_rel_max"], "".join(
        " %s max|p32-p64| %.2e;" % (o, st[o + "_abs_max"]) for o in OPTIMS if o + "_abs_max" in st)))
    return written


# ---------------------------------------------------------------------------
# Hand-built edge-case / malformed models
# ---------------------------------------------------------------------------


def _save(model, fname, check=True):
    if check:
        onnx.checker.check_model(model)
    path = os.path.join(OUT_DIR, fname)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return fname


def _mk_model(graph, opset=DEFAULT_OPSET):
    m = helper.make_model(graph, producer_name="smhgen-testdata",
                          opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7  # same IR version torch 1.13 writes
    return m


def build_edge_models():
    written = []
    rng = np.random.default_rng(100)
    f32 = lambda a: np.asarray(a, dtype=np.float32)

    # 1. valid model containing an unsupported op (LSTM) in the middle, with node names.
    seq, batch, isz, hsz = 4, 1, 3, 2
    W = numpy_helper.from_array(f32(rng.standard_normal((1, 4 * hsz, isz)) * 0.5), "lstm.W")
    R = numpy_helper.from_array(f32(rng.standard_normal((1, 4 * hsz, hsz)) * 0.5), "lstm.R")
    g = helper.make_graph(
        [
            helper.make_node("Relu", ["input"], ["relu_out"], name="relu_0"),
            helper.make_node("LSTM", ["relu_out", "lstm.W", "lstm.R"], ["output"],
                             name="lstm_0", hidden_size=hsz),
        ],
        "bad_unsupported_op",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [seq, batch, isz])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [seq, 1, batch, hsz])],
        [W, R],
    )
    written.append(_save(_mk_model(g), "bad_unsupported_op.onnx"))

    # 2. Conv whose weight input names a tensor that exists nowhere.
    #    (Fails onnx.checker by construction, so it is not checked.)
    b = numpy_helper.from_array(f32(np.zeros(2)), "conv.bias")
    g = helper.make_graph(
        [helper.make_node("Conv", ["input", "conv.weight", "conv.bias"], ["output"],
                          name="conv_0", kernel_shape=[3, 3], pads=[1, 1, 1, 1])],
        "bad_missing_initializer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2, 4, 4])],
        [b],
    )
    written.append(_save(_mk_model(g), "bad_missing_initializer.onnx", check=False))
    try:
        onnx.checker.check_model(_mk_model(g))
        raise SystemExit("bad_missing_initializer unexpectedly passes the checker")
    except onnx.checker.ValidationError:
        pass

    # 3. float16 graph input and float16 initializer feeding Add (valid ONNX).
    h = numpy_helper.from_array(np.array([0.5, -1.0, 2.0, 0.0], dtype=np.float16), "bias_f16")
    g = helper.make_graph(
        [
            helper.make_node("Add", ["input", "bias_f16"], ["sum"], name="add_0"),
            helper.make_node("Relu", ["sum"], ["output"], name="relu_0"),
        ],
        "bad_dtype",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT16, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT16, [1, 4])],
        [h],
    )
    written.append(_save(_mk_model(g), "bad_dtype.onnx"))

    # 4. BOOL initializers feeding Where, in both encodings: raw_data (numpy_helper)
    #    and int32_data (helper.make_tensor without raw) -- onnx-go mishandles bools.
    cond1 = np.array([[True, False, True], [False, True, True]])
    cond2 = np.array([[True, True, False], [False, True, False]])
    t1 = numpy_helper.from_array(cond1, "cond_raw")
    t2 = helper.make_tensor("cond_int32", TensorProto.BOOL, [2, 3], cond2.flatten().tolist())
    z = numpy_helper.from_array(f32(np.full((2, 3), -1.0)), "minus_one")
    g = helper.make_graph(
        [
            helper.make_node("Where", ["cond_raw", "input", "minus_one"], ["w1"], name="where_0"),
            helper.make_node("Where", ["cond_int32", "w1", "minus_one"], ["output"], name="where_1"),
        ],
        "bool_initializer",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [2, 3])],
        [t1, t2, z],
    )
    m = _mk_model(g)
    written.append(_save(m, "bool_initializer.onnx"))
    bx = f32(rng.standard_normal((2, 3)))
    by = f32(np.where(cond2, np.where(cond1, bx, -1.0), -1.0))
    got = run_onnx(m, {"input": bx})["output"]
    assert np.array_equal(got.astype(np.float32), by)
    np.save(os.path.join(OUT_DIR, "bool_initializer.input.npy"), bx)
    np.save(os.path.join(OUT_DIR, "bool_initializer.output.npy"), by)
    written += ["bool_initializer.input.npy", "bool_initializer.output.npy"]

    # 5. torch-exported net with two all-zero conv biases: the exporter keeps one
    #    initializer and feeds the other use through an Identity node.
    torch.manual_seed(8)
    model = SharedBias().eval()
    x_np = np.random.default_rng(8).standard_normal((BATCH, 3, 4, 4)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x_np)).numpy()
    m = export(model, torch.from_numpy(x_np), os.path.join(OUT_DIR, "shared_initializer.onnx"))
    check_against(m, x_np, y, "shared_initializer.onnx")
    ids = [n for n in m.graph.node if n.op_type == "Identity"]
    inits = {t.name for t in m.graph.initializer}
    if not ids or not all(n.input[0] in inits for n in ids):
        raise SystemExit("shared_initializer: Identity-on-initializer pattern not reproduced")
    np.save(os.path.join(OUT_DIR, "shared_initializer.input.npy"), x_np)
    np.save(os.path.join(OUT_DIR, "shared_initializer.output.npy"), y.astype(np.float32))
    written += ["shared_initializer.onnx", "shared_initializer.input.npy", "shared_initializer.output.npy"]
    return written


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def report(files):
    print()
    print("%-30s %9s %5s  %s" % ("file", "bytes", "opset", "ops"))
    total = 0
    for f in sorted(set(files)):
        path = os.path.join(OUT_DIR, f)
        size = os.path.getsize(path)
        total += size
        if f.endswith(".onnx"):
            m = onnx.load(path)
            opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
            ops = collections.Counter(n.op_type for n in m.graph.node)
            ops_s = " ".join("%s:%d" % kv for kv in sorted(ops.items()))
            identity = [n for n in m.graph.node if n.op_type == "Identity"]
            if identity:
                ops_s += "  [Identity: %s]" % ", ".join("%s->%s" % (n.input[0], n.output[0]) for n in identity)
            print("%-30s %9d %5d  %s" % (f, size, opset, ops_s))
        elif f.endswith(".npz"):
            z = np.load(path)
            groups = collections.Counter(k.split("/", 1)[0] for k in z.files)
            print("%-30s %9d %5s  batch %d; %s" % (f, size, "", z["input"].shape[0],
                                                   " ".join("%s:%d" % kv for kv in groups.items())))
        else:
            print("%-30s %9d %5s  %s" % (f, size, "", str(np.load(path).shape)))
    print("%-30s %9d  (%.2f MB)" % ("TOTAL", total, total / 1e6))
    committed = sum(os.path.getsize(os.path.join(OUT_DIR, f)) for f in set(files) if not f.startswith("big"))
    print("%-30s %9d  (%.2f MB, without big/, export.py and README.md)" % ("COMMITTED", committed, committed / 1e6))
    return total


# ---------------------------------------------------------------------------
# Experiment models (experiments/): freshly initialised networks to train
# from scratch, in big/experiments/ (git-ignored; not fixtures, so the tests
# that run every big/*.onnx against references do not see them). No reference outputs: their behaviour
# is the training curve. Width-multiplier baselines are narrower copies at
# about the sizes of the compressed runs (fractions 0.5 ... 0.02).
# ---------------------------------------------------------------------------

# LeNet-5 widths (conv1, conv2, fc1, fc2): round(w * (6, 16, 120, 84)).
LENET_WIDTHS = [0.7, 0.5, 0.32, 0.22, 0.14]
# ResNet-20 first-stage channels (even, for option A): 16 is the original.
RESNET_WIDTHS = [12, 8, 6, 4, 2]


def build_experiment_models():
    os.makedirs(os.path.join(OUT_DIR, "big", "experiments"), exist_ok=True)
    written = []

    def save(model, fname, shape, seed):
        model.eval()
        x_np = np.random.default_rng(seed).standard_normal((BATCH,) + shape).astype(np.float32)
        x = torch.from_numpy(x_np)
        with torch.no_grad():
            y = model(x).numpy()
        path = os.path.join("big", "experiments", fname)
        kw = {"training": torch.onnx.TrainingMode.PRESERVE} if has_bn(model) else {}
        m = export(model, x, os.path.join(OUT_DIR, path), **kw)
        err = check_against(m, x_np, y, fname)
        print("%-32s params=%-7d max numpy-vs-torch err=%.2g"
              % (fname, sum(p.numel() for p in model.parameters()), err))
        written.append(path)

    for w in LENET_WIDTHS:
        torch.manual_seed(11)
        widths = tuple(max(1, round(w * c)) for c in (6, 16, 120, 84))
        save(LeNet5(widths), "lenet5_w%g.onnx" % w, (1, 28, 28), 11)
    for c in [16] + RESNET_WIDTHS:
        torch.manual_seed(12)
        name = "resnet20_fmnist_bn" + ("" if c == 16 else "_w%g" % (c / 16))
        save(resnet20("A", width=c, in_ch=1), name + ".onnx", (1, 28, 28), 12)
    return written


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    files = build_models() + build_edge_models() + build_experiment_models()
    report(files)
    if "--sha" in sys.argv:
        for f in sorted(set(files)):
            with open(os.path.join(OUT_DIR, f), "rb") as fh:
                print(hashlib.sha256(fh.read()).hexdigest()[:16], f)


if __name__ == "__main__":
    main()
