#!/usr/bin/python3
"""The PyTorch side of the bench harness's pytorch scenario (bench/pytorch.go).

Run by the harness, not by hand (go run ./bench -scenario pytorch). It is a
server driven over standard input and output, so that the imports and the
warm-up are paid once and the harness can alternate it, measure by measure,
with the benchmark program of the generated Go packages while the other
process waits:

    /usr/bin/python3 bench/torch_bench.py --repo . --data DIR \\
        --model lenet5=testdata/models/lenet5.onnx --measure lenet5/train/64 ...

Every model is built by testdata/models/export.py's own constructor with its
seed and BatchNorm randomisation (the code that produced the ONNX file), and
then the ONNX file's initializers are loaded into it by name, so both sides
start from the same weights. The random inputs and labels are the ones the Go
program wrote (its -data-dir), so both sides see the same data.

Measures:
  PKG/train/B    one training step at batch B: forward, softmax cross-entropy,
                 backward and an SGD step (momentum 0.9, --lr), in train mode
                 (BatchNorm on batch statistics) with Dropout off, as in the
                 exported graph, which has no Dropout;
  PKG/forward/B  a forward pass at batch B in eval mode under torch.no_grad();
  sgemm/N        torch.mm of two N x N float32 matrices.

OpenBLAS runs each measure with all --threads or with one thread, whichever
was faster in calibration (see main). After warming up and calibrating every
measure it prints one JSON line,
{"ready": true, ...} with what it found (threads, BLAS, weights loaded, the
first training losses); then it answers each request line "run ID" with one
JSON line holding the time per call, and stops at "quit" or the end of the
input. Losses are sent as strings because JSON has no NaN. Progress and
errors go to standard error.
"""

import argparse
import ctypes
import json
import math
import os
import re
import sys
import time

# The protocol owns the real standard output; anything a library prints
# (to Python's sys.stdout or to file descriptor 1 from C) goes to standard
# error instead, so that it cannot corrupt a reply.
_PROTO = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr


def reply(obj):
    _PROTO.write(json.dumps(obj) + "\n")
    _PROTO.flush()


def log(msg):
    print("torch_bench: " + msg, file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="the smhgen repository root")
    p.add_argument("--data", required=True, help="directory of the Go program's random data (-data-dir)")
    p.add_argument("--model", action="append", default=[], metavar="PKG=ONNX",
                   help="a model: the Go package name and its ONNX file, relative to --repo")
    p.add_argument("--measure", action="append", default=[], metavar="ID", help="a measure to serve")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: the CPU count)")
    p.add_argument("--batch", type=int, default=64, help="training batch size (the data's)")
    p.add_argument("--lr", type=float, default=0.001, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sgemm matrices")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per measure before calibration")
    p.add_argument("--train-time", type=float, default=1.0, help="target seconds of one training measurement")
    p.add_argument("--infer-time", type=float, default=0.3, help="target seconds of one other measurement")
    return p.parse_args()


class Blas:
    """What BLAS torch really calls: BLAS_INFO from its build, the BLAS
    libraries mapped into this process, and, when OpenBLAS is the one
    loaded, its configuration and a handle to set its thread count."""

    def __init__(self, torch):
        m = re.search(r"BLAS_INFO=([^,\s]*)", torch.__config__.show())
        self.info = m.group(1) if m else ""
        self.libs, self.openblas, self.lib = [], "", None
        try:
            with open("/proc/self/maps") as f:
                for line in f:
                    fields = line.split()
                    if len(fields) >= 6 and "blas" in os.path.basename(fields[-1]) and fields[-1] not in self.libs:
                        self.libs.append(fields[-1])
        except OSError:
            pass
        for path in self.libs:
            if "openblas" in os.path.basename(path):
                try:
                    lib = ctypes.CDLL(path)  # the already loaded library
                    lib.openblas_get_config.restype = ctypes.c_char_p
                    self.openblas = lib.openblas_get_config().decode()
                    lib.openblas_get_num_threads, lib.openblas_set_num_threads  # AttributeError if absent
                    self.lib = lib
                except (OSError, AttributeError):
                    pass
                break

    def threads(self):
        return int(self.lib.openblas_get_num_threads()) if self.lib else 0

    def set_threads(self, n):
        if self.lib and n > 0:
            self.lib.openblas_set_num_threads(n)

    def facts(self):
        return dict(blas_info=self.info, blas_libs=[os.path.realpath(p) for p in self.libs],
                    openblas=self.openblas, openblas_threads=self.threads())


def build_model(export, torch, repo, onnx_rel):
    """The model of an ONNX file built as export.py builds it (the file's
    base name without .onnx and _bn names the MODELS entry), with the file's
    initializers loaded by name. Returns the model, its input shape and the
    counts (identical before loading, loaded, float state tensors)."""
    import onnx
    from onnx import numpy_helper

    base = os.path.basename(onnx_rel)
    if not base.endswith(".onnx"):
        raise SystemExit("torch_bench: %s is not an .onnx file" % onnx_rel)
    name = base[: -len(".onnx")]
    if name.endswith("_bn"):
        name = name[: -len("_bn")]
    entry = [m for m in export.MODELS if m[0] == name]
    if not entry:
        raise SystemExit("torch_bench: export.py has no model %r (for %s)" % (name, onnx_rel))
    _, seed, ctor, shape = entry[0]
    torch.manual_seed(seed)
    model = ctor()
    if export.has_bn(model):
        export.randomize_bn(model, seed + 1000)
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(os.path.join(repo, onnx_rel)).graph.initializer}
    same = loaded = total = 0
    with torch.no_grad():
        for k, v in model.state_dict().items():  # shares storage with the model
            if not v.is_floating_point():
                continue
            total += 1
            a = inits.get(k)
            if a is None or tuple(a.shape) != tuple(v.shape):
                continue
            t = torch.from_numpy(a.copy()).to(v.dtype)
            same += int(torch.equal(t, v))
            v.copy_(t)
            loaded += 1
    return model, shape, (same, loaded, total)


def read_raw(np, path, dtype):
    a = np.fromfile(path, dtype=dtype)
    if a.size == 0:
        raise SystemExit("torch_bench: %s is empty or missing" % path)
    return a


class Measure:
    """One measure: run(iters) returns nanoseconds per call; blas_threads
    is the OpenBLAS thread count it runs with (0: left alone)."""

    def __init__(self, mid, run, trainer=None):
        self.id, self.run, self.trainer, self.iters, self.blas_threads = mid, run, trainer, 1, 0


class Trainer:
    """Training steps of one model on its fixed batches, cycled in order
    like the Go program's."""

    def __init__(self, torch, export, model, xs, ys, lr):
        self.torch, self.export, self.model, self.xs, self.ys = torch, export, model, xs, ys
        self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        self.step, self.losses = 0, []

    def run(self, iters):
        F = self.torch.nn.functional
        self.export._train_mode(self.model)  # train mode, Dropout off: the exported graph has none
        start = time.perf_counter_ns()
        for _ in range(iters):
            i = self.step % len(self.xs)
            self.step += 1
            self.opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.model(self.xs[i]), self.ys[i])
            loss.backward()
            self.opt.step()
            self.losses.append(loss.item())
        return (time.perf_counter_ns() - start) / iters


def main():
    args = parse_args()
    import numpy as np
    import torch

    sys.path.insert(0, os.path.join(args.repo, "testdata", "models"))
    import export  # noqa: E402  (the models' own definitions)

    # export.py asks for deterministic algorithms and one thread for its
    # reproducible exports; timing wants PyTorch's fastest defaults.
    torch.use_deterministic_algorithms(False)
    threads = args.threads if args.threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(threads)

    models, measures, params, weights = {}, [], {}, {}
    for spec in args.model:
        pkg, _, rel = spec.partition("=")
        model, shape, counts = build_model(export, torch, args.repo, rel)
        per = int(np.prod(shape))
        xs = read_raw(np, os.path.join(args.data, pkg + ".train.f32"), "<f4")
        ys = read_raw(np, os.path.join(args.data, pkg + ".labels.i32"), "<i4").astype(np.int64)
        if xs.size % (args.batch * per) or ys.size * per != xs.size:
            raise SystemExit("torch_bench: %s's data does not hold batches of %d x %s" % (pkg, args.batch, shape))
        xs = [torch.from_numpy(b.copy()) for b in xs.reshape((-1, args.batch) + tuple(shape))]
        ys = [torch.from_numpy(b.copy()) for b in ys.reshape(-1, args.batch)]
        models[pkg] = dict(model=model, shape=shape, xs=xs, ys=ys, trainer=None)
        params[pkg] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        weights[pkg] = counts

    def forward_run(model, x):
        def run(iters):
            model.eval()
            with torch.no_grad():
                start = time.perf_counter_ns()
                for _ in range(iters):
                    model(x)
                return (time.perf_counter_ns() - start) / iters
        return run

    for mid in args.measure:
        f = mid.split("/")
        try:
            n = int(f[-1])
        except ValueError:
            n = 0
        if len(f) == 2 and f[0] == "sgemm" and n > 0:
            g = torch.Generator().manual_seed(args.seed)
            a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
            c = torch.empty(n, n)

            def run(iters, a=a, b=b, c=c):
                start = time.perf_counter_ns()
                for _ in range(iters):
                    torch.mm(a, b, out=c)
                return (time.perf_counter_ns() - start) / iters
            measures.append(Measure(mid, run))
        elif len(f) == 3 and f[0] in models and f[1] == "train" and n == args.batch:
            m = models[f[0]]
            if m["trainer"] is None:
                m["trainer"] = Trainer(torch, export, m["model"], m["xs"], m["ys"], args.lr)
            measures.append(Measure(mid, m["trainer"].run, m["trainer"]))
        elif len(f) == 3 and f[0] in models and f[1] == "forward" and n > 0:
            m = models[f[0]]
            path = os.path.join(args.data, "%s.forward%d.f32" % (f[0], n))
            x = read_raw(np, path, "<f4")
            if x.size != n * int(np.prod(m["shape"])):
                raise SystemExit("torch_bench: %s does not hold %d inputs of %s" % (path, n, m["shape"]))
            measures.append(Measure(mid, forward_run(m["model"], torch.from_numpy(x.reshape((n,) + tuple(m["shape"]))))))
        else:
            raise SystemExit("torch_bench: bad measure %r" % mid)

    # OpenBLAS's pthread build runs its own threads besides PyTorch's OpenMP
    # ones, and they spin for about 0.1 s after each call, so on a machine
    # with as many cores as threads they can slow the convolutions that
    # follow a Linear layer. Each measure runs with whichever OpenBLAS
    # thread count, all of them or one, was faster in calibration.
    blas = Blas(torch)
    choices = [blas.threads()] + ([1] if blas.threads() > 1 else [])
    iters, blas_threads = {}, {}
    for m in measures:
        best = {}
        for bt in choices:
            log("warming up %s (OpenBLAS threads: %d)" % (m.id, bt))
            blas.set_threads(bt)
            for _ in range(args.warmup):
                m.run(1)
            best[bt] = min(m.run(1) for _ in range(3))
        m.blas_threads = min(best, key=best.get) if blas.lib else 0
        target = (args.train_time if m.trainer else args.infer_time) * 1e9
        m.iters = max(1, int(math.ceil(target / best[m.blas_threads])))
        iters[m.id], blas_threads[m.id] = m.iters, m.blas_threads
    blas.set_threads(choices[0])

    info = dict(ready=True, torch=torch.__version__, python=sys.version.split()[0], threads=torch.get_num_threads(),
                interop_threads=torch.get_num_interop_threads(),
                mkldnn=bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
                params=params, weights=weights, iters=iters, measure_blas_threads=blas_threads,
                losses={pkg: [repr(v) for v in m["trainer"].losses[:3]] for pkg, m in models.items() if m["trainer"]})
    info.update(blas.facts())
    reply(info)

    by_id = {m.id: m for m in measures}
    for line in sys.stdin:
        f = line.split()
        if not f:
            continue
        if f[0] == "quit":
            break
        if len(f) != 2 or f[0] != "run" or f[1] not in by_id:
            reply({"error": "bad request %r" % line.strip()})
            continue
        m = by_id[f[1]]
        blas.set_threads(m.blas_threads)
        out = {"id": m.id, "iters": m.iters, "ns_per_op": m.run(m.iters)}
        if m.trainer:
            losses = m.trainer.losses
            out["loss"] = repr(losses[-1])
            out["nonfinite"] = sum(1 for v in losses if not math.isfinite(v))
            m.trainer.losses = []  # checked: only newer losses matter from here on
        reply(out)


if __name__ == "__main__":
    main()
