#!/usr/bin/python3
"""Export torchvision's EfficientNet-B0 (5.3M parameters) for timing the
compiler on a full-size model, e.g. -smh-init=fit:

    /usr/bin/python3 testdata/models/export_efficientnet_b0.py
    time go run ./cmd/smhgen -fraction 0.1 -smh-init=fit -emit=ir \
        testdata/models/big/bench/efficientnet_b0.onnx >/dev/null

No pretrained weights are available offline: the model has torchvision's
own random initialisation (seed 0), which is enough for timings. It goes to
big/bench/, which git ignores; it is not in big/ itself because the tests
that run every big/*.onnx against PyTorch references would pick it up, and
it has none (and the float64 interpreter would take minutes on it).
"""

import os

import torch
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "big", "bench", "efficientnet_b0.onnx")

torch.manual_seed(0)
model = torchvision.models.efficientnet_b0(weights=None).eval()
x = torch.zeros(1, 3, 224, 224)
os.makedirs(os.path.dirname(OUT), exist_ok=True)
torch.onnx.export(model, x, OUT, input_names=["input"], output_names=["output"], do_constant_folding=True)
print("%s: %d parameters, %d bytes" % (OUT, sum(p.numel() for p in model.parameters()), os.path.getsize(OUT)))
