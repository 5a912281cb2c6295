"""The seed's backbone comparison at a real budget, and a stronger teacher, in one GPU run.

Pure PyTorch + numpy (the GPU machine has no TensorFlow and no project install). In one run:

1. trains the seed's four torchvision backbones (vgg16_bn, resnet50, densenet121, mobilenet_v2; from
   scratch, grey faces resized to --size px and replicated to three channels) and our fernet (48 px, an
   exact port of fercam.training.models.make_fernet) with ONE recipe and an EQUAL wall-clock budget each,
   and scores each on the FER2013 public test (mirror-averaged, as the app serves): accuracy, macro F1,
   per-class recall and precision; also the held-out validation rows and the wild_faces_dev crops;
2. makes a teacher of the best networks (mean of their mirror-averaged probabilities, chosen on the
   validation rows, which nothing here trains on) and writes its soft labels for every FER2013 training
   row and every wild_faces_dev crop;
3. distils a fresh fernet from that teacher (online, on the same augmented batch) for the rest of the
   time and writes its weights in Keras layout, with reference inputs and logits to check the port.

The recipe is fercam.training.train's, on the GPU: targets 70% label + 30% FER+ vote shares, loss weights
(n_max / n_class) ** 0.5, the same augmentation (flip, rotation, zoom, shift, brightness, contrast, random
erasing) on whole batches, AdamW with warm-up and cosine decay as a function of elapsed time (the budget
is time), bf16 autocast, channels_last. VGG16 is the batch-norm variant: from scratch, plain VGG16 (13
convolutions without normalisation) often does not start learning at all (it stayed at the majority share
in docs/BACKBONES.md's CPU runs), and batch norm is what lets one learning rate serve all five networks.

Outputs in --out (at most 8 files): results.json (rewritten after each network), soft_labels.npz,
fernet_student.npz, fernet_plain.npz (the compared fernet, portable too); the command tees log.txt.

    python3 tools/gpu_backbones.py --data .gpu/fer_gpu.npz --out $OUT --deadline-s 500
    python3 tools/gpu_backbones.py --data .gpu/fer_gpu.npz --out /tmp/gpuout --smoke   # CPU, every path
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from facecodec import decode
from torch import nn

START = time.monotonic()
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
BACKBONES = ("vgg16_bn", "resnet50", "densenet121", "mobilenet_v2")
NETWORKS = ("fernet", *BACKBONES)
FERNET_STAGES = ((32, 1), (64, 2), (128, 2), (256, 2))
# FER+ vote columns (neutral happiness surprise sadness anger disgust fear ...) -> FER2013 codes.
FERPLUS_TO_FER = {0: 6, 1: 3, 2: 5, 3: 4, 4: 0, 5: 1, 6: 2}
# When the run falls behind, the student's time shrinks first (to this share), so that the compared
# networks keep equal budgets.
MIN_STUDENT_SHARE = 0.5


@dataclass(frozen=True)
class Recipe:
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_share: float = 0.05  # of the time budget, from learning_rate / 20
    final_lr_share: float = 0.01  # cosine decay to this share of the peak
    ferplus_weight: float = 0.3
    class_weight_power: float = 0.5
    teacher_weight: float = 0.5  # the distilled student's target: this share from the teacher
    size: int = 96  # backbones' input size; fernet always 48
    rotation_deg: float = 12.0
    zoom: tuple[float, float] = (-0.15, 0.1)  # negative: closer (Keras RandomZoom's convention)
    shift: float = 0.1
    brightness: float = 0.2
    contrast: float = 0.3
    erase_probability: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.15)


# --- data -------------------------------------------------------------------------------------------


def load_data(path: str, device: torch.device, limit: int = 0) -> dict:
    """The packed npz (tools/pack_gpu_data.py) as uint8 faces on `device` and numpy labels."""
    with np.load(path) as npz:
        d = {k: npz[k] for k in npz.files}
    n_train, n_test, n_wild = (int(n) for n in d["face_counts"])
    faces = decode(d["faces_xz"], (n_train + n_test + n_wild, 48, 48), torch_device=device)
    train_faces, public, wild = np.split(faces, [n_train, n_train + n_test])
    rows = np.arange(len(d["y_train"])) if not limit else np.linspace(0, len(d["y_train"]) - 1, limit).astype(int)
    x_rows = train_faces[d["train_face"][rows]]
    y_rows = d["y_train"][rows].astype(np.int64)
    val = d["val_rows"][rows]
    test_rows = np.linspace(0, n_test - 1, limit // 2).astype(int) if limit else np.arange(n_test)
    wild_rows = np.linspace(0, n_wild - 1, limit // 4).astype(int) if limit else np.arange(n_wild)
    return {
        "x_rows": x_rows,  # every training row (duplicates included), numpy uint8
        "y_rows": y_rows,
        "targets": soft_targets(y_rows, d["ferplus_train"][rows], Recipe.ferplus_weight),
        "fit": np.flatnonzero(~val),
        "val": np.flatnonzero(val),
        "x_public": public[test_rows],
        "y_public": d["y_public"][test_rows].astype(np.int64),
        "x_wild": wild[wild_rows],
        "y_wild": d["wild_y"][wild_rows].astype(np.int64),
        "wild_found": d["wild_found"][wild_rows],
        "wild_names": d["wild_names"][wild_rows],
    }


def soft_targets(y: np.ndarray, votes: np.ndarray, ferplus_weight: float) -> np.ndarray:
    """As fercam.training.train.soft_targets: one-hot blended with FER+ vote shares (uniform without votes)."""
    dist = np.zeros((len(votes), len(EMOTIONS)), np.float32)
    for src, dst in FERPLUS_TO_FER.items():
        dist[:, dst] = votes[:, src]
    total = dist.sum(1, keepdims=True)
    prior = np.where(total > 0, dist / np.maximum(total, 1), 1 / len(EMOTIONS))
    return ((1 - ferplus_weight) * np.eye(len(EMOTIONS), dtype=np.float32)[y] + ferplus_weight * prior).astype(
        np.float32
    )


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """As fercam.training.data.class_weights: (n_max / n_c) ** power, mean 1 over samples."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    return (weights / weights[labels].mean()).astype(np.float32)


# --- augmentation on the GPU ------------------------------------------------------------------------


def augment(x: torch.Tensor, r: Recipe) -> torch.Tensor:
    """uint8 (B, 48, 48) -> float (B, 1, 48, 48) in 0..255: flip, rotation, zoom, shift (one affine
    resampling, reflected at the border), brightness, contrast, random erasing; each draw per face."""
    b, dev = x.shape[0], x.device
    x = x.float().unsqueeze(1)
    flip = torch.rand(b, device=dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    angle = (torch.rand(b, device=dev) * 2 - 1) * math.radians(r.rotation_deg)
    scale = 1 + r.zoom[0] + torch.rand(b, device=dev) * (r.zoom[1] - r.zoom[0])  # sampled extent: <1 is closer
    shift = (torch.rand(b, 2, device=dev) * 2 - 1) * 2 * r.shift  # normalised coordinates span 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    x = x + ((torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * r.brightness * 255)
    mean = x.mean((2, 3), keepdim=True)
    x = (x - mean) * (1 + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * r.contrast) + mean
    x = x.clamp(0, 255)
    return random_erase(x, r)


def random_erase(x: torch.Tensor, r: Recipe) -> torch.Tensor:
    """A rectangle of 2-15% of the face (aspect 0.3..3.3) filled with one random grey, on half the faces."""
    b, _, h, w = x.shape
    dev = x.device
    area = (r.erase_area[0] + torch.rand(b, device=dev) * (r.erase_area[1] - r.erase_area[0])) * h * w
    aspect = torch.exp((torch.rand(b, device=dev) * 2 - 1) * math.log(3.3))
    eh = (area * aspect).sqrt().clamp(1, h)
    ew = (area / aspect).sqrt().clamp(1, w)
    top = torch.rand(b, device=dev) * (h - eh)
    left = torch.rand(b, device=dev) * (w - ew)
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (rows >= top.view(b, 1, 1))
        & (rows < (top + eh).view(b, 1, 1))
        & (cols >= left.view(b, 1, 1))
        & (cols < (left + ew).view(b, 1, 1))
    )
    erase = (torch.rand(b, device=dev) < r.erase_probability).view(b, 1, 1) & inside
    fill = (torch.rand(b, 1, 1, device=dev) * 255).expand(b, h, w)
    return torch.where(erase.unsqueeze(1), fill.unsqueeze(1), x)


# --- networks ---------------------------------------------------------------------------------------


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        # Keras Conv2D(3, padding="same", use_bias=False) + BatchNormalization() (eps 1e-3, momentum 0.99)
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()
        )
        nn.init.kaiming_normal_(self[0].weight, nonlinearity="relu")  # Keras he_normal


class FerNet(nn.Module):
    """fercam.training.models.make_fernet layer for layer: raw 0..255 pixels in, logits out."""

    def __init__(self, stages=FERNET_STAGES, dropout: float = 0.4) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        cin = 1
        for width, convs in stages:
            self.stages.append(nn.ModuleList([ConvBNReLU(cin if i == 0 else width, width) for i in range(convs)]))
            cin = width
        self.dropout = nn.Dropout(dropout)
        self.logits = nn.Linear(cin, len(EMOTIONS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 127.5 - 1.0  # Keras Rescaling(1 / 127.5, offset=-1)
        for i, stage in enumerate(self.stages):
            x = stage[0](x)
            if len(stage) > 1:
                shortcut = x
                for block in stage[1:]:
                    x = block(x)
                x = shortcut + x
            if i < len(self.stages) - 1:
                x = F.max_pool2d(x, 2)
        return self.logits(self.dropout(x.mean((2, 3))))

    def keras_weights(self) -> dict[str, np.ndarray]:
        """Arrays in Keras layout, named in make_fernet's layer order (conv{i}, bn{i}, logits)."""
        out = {}
        blocks = [block for stage in self.stages for block in stage]
        for i, block in enumerate(blocks):
            conv, bn = block[0], block[1]
            out[f"conv{i}_kernel"] = conv.weight.detach().float().permute(2, 3, 1, 0).cpu().numpy()  # HWIO
            out[f"bn{i}_gamma"] = bn.weight.detach().float().cpu().numpy()
            out[f"bn{i}_beta"] = bn.bias.detach().float().cpu().numpy()
            out[f"bn{i}_mean"] = bn.running_mean.detach().float().cpu().numpy()
            out[f"bn{i}_var"] = bn.running_var.detach().float().cpu().numpy()
        out["logits_kernel"] = self.logits.weight.detach().float().t().cpu().numpy()
        out["logits_bias"] = self.logits.bias.detach().float().cpu().numpy()
        return out


class Backbone(nn.Module):
    """A torchvision network from scratch: 48 px grey -> `size` px, [-1, 1], replicated to RGB."""

    def __init__(self, name: str, size: int) -> None:
        super().__init__()
        import torchvision

        self.size = size
        self.net = getattr(torchvision.models, name)(weights=None, num_classes=len(EMOTIONS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x / 127.5 - 1.0).expand(-1, 3, -1, -1).contiguous(memory_format=torch.channels_last)
        return self.net(x)


def make_network(name: str, recipe: Recipe) -> nn.Module:
    return FerNet() if name == "fernet" else Backbone(name, recipe.size)


# --- training ---------------------------------------------------------------------------------------


class Trainer:
    """Trains networks on the fit rows for a wall-clock budget with the one recipe."""

    def __init__(self, data: dict, recipe: Recipe, device: torch.device, *, smoke: bool) -> None:
        self.recipe, self.device = recipe, device
        self.sync_every, self.warmup_steps = (1, 1) if smoke else (10, 3)
        fit = data["fit"]
        self.x = torch.from_numpy(data["x_rows"][fit]).to(device)  # uint8 on the device
        self.targets = torch.from_numpy(data["targets"][fit]).to(device)
        self.weights = torch.from_numpy(
            class_weights(data["y_rows"][fit], recipe.class_weight_power)[data["y_rows"][fit]]
        ).to(device)
        self.autocast = device.type == "cuda"

    def lr(self, fraction: float) -> float:
        r = self.recipe
        if fraction < r.warmup_share:
            return r.learning_rate * (1 / 20 + (1 - 1 / 20) * fraction / r.warmup_share)
        progress = min(1.0, (fraction - r.warmup_share) / (1 - r.warmup_share))
        return r.learning_rate * (r.final_lr_share + (1 - r.final_lr_share) * 0.5 * (1 + math.cos(math.pi * progress)))

    def batches(self, generator: torch.Generator):
        """Endless fixed-size batches of fit-row indices, a fresh permutation each epoch."""
        n, bs = len(self.x), min(self.recipe.batch_size, len(self.x))
        while True:
            perm = torch.randperm(n, device=self.device, generator=generator)
            for i in range(0, n - bs + 1, bs):
                yield perm[i : i + bs]

    def train(self, model: nn.Module, budget_s: float, *, teacher=None, seed: int = 0) -> dict:
        """Train `model` for `budget_s` seconds of device time; with `teacher` (a callable on augmented
        pixels giving probabilities), its share of every target comes from the teacher's view."""
        r = self.recipe
        model.to(self.device).to(memory_format=torch.channels_last).train()
        fused = self.device.type == "cuda"
        optimizer = torch.optim.AdamW(model.parameters(), lr=r.learning_rate, weight_decay=r.weight_decay, fused=fused)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        torch.manual_seed(seed)
        batches = self.batches(generator)

        def step(index: torch.Tensor, lr: float | None) -> torch.Tensor:
            x = augment(self.x[index], r)
            target = self.targets[index]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                if teacher is not None:
                    with torch.no_grad():
                        target = (1 - r.teacher_weight) * target + r.teacher_weight * teacher(x).float()
                logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = -(target * F.log_softmax(logits.float(), 1)).sum(1)
            loss = (loss * self.weights[index]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
            return loss.detach()

        for _ in range(self.warmup_steps):  # cudnn.benchmark picks its kernels here, outside the budget; no update
            step(next(batches), None)
        synchronize(self.device)
        t0 = time.monotonic()
        steps, measured, measured_at, loss = 0, 0.0, 0, torch.zeros(())
        while True:
            if steps % self.sync_every == 0:
                synchronize(self.device)
                measured, measured_at = time.monotonic() - t0, steps
                if measured >= budget_s:
                    break
            per_step = measured / measured_at if measured_at else 0.0
            elapsed = measured + (steps - measured_at) * per_step
            loss = step(next(batches), self.lr(elapsed / budget_s))
            steps += 1
        seconds = time.monotonic() - t0
        images = steps * min(r.batch_size, len(self.x))
        model.eval()
        return {
            "train_seconds": round(seconds, 1),
            "steps": steps,
            "epochs": round(images / len(self.x), 2),
            "images_per_s": round(images / seconds),
            "final_loss": round(float(loss), 4),
        }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@torch.no_grad()
def predict(
    model: nn.Module, faces: np.ndarray | torch.Tensor, device: torch.device, *, mirror: bool = True, batch: int = 1024
) -> np.ndarray:
    """Softmax probabilities of uint8 faces, each averaged with its mirror image (as the app serves)."""
    model.eval()
    faces = torch.as_tensor(faces).to(device)
    out = []
    for i in range(0, len(faces), batch):
        x = faces[i : i + batch].float().unsqueeze(1)
        views = torch.cat([x, x.flip(3)]) if mirror else x
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            p = F.softmax(model(views.contiguous(memory_format=torch.channels_last)).float(), 1)
        out.append(((p[: len(x)] + p[len(x) :]) / 2 if mirror else p).cpu())
    return torch.cat(out).numpy()


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, macro F1, per-class recall and precision (fercam.training.evaluate's)."""
    k = len(EMOTIONS)
    pred = probs.argmax(1)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    present = confusion.sum(1) > 0
    return {
        "samples": int(len(labels)),
        "accuracy": round(float((pred == labels).mean()), 4),
        "balanced_accuracy": round(float(recall[present].mean()), 4),
        "macro_f1": round(float(f1.mean()), 4),
        "recall": {n: round(float(v), 4) for n, v in zip(EMOTIONS, recall)},
        "precision": {n: round(float(v), 4) for n, v in zip(EMOTIONS, precision)},
        "confusion": confusion.tolist(),
    }


# --- the run ----------------------------------------------------------------------------------------


class Results:
    """results.json, rewritten after every stage so that a run killed at its limit keeps what it did."""

    def __init__(self, out: Path, header: dict) -> None:
        self.path, self.data = out / "results.json", {**header, "networks": {}}
        self.save()

    def save(self) -> None:
        self.data["elapsed_s"] = round(time.monotonic() - START, 1)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def log(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


def evaluate(name: str, model: nn.Module, data: dict, device: torch.device) -> tuple[dict, dict]:
    """(scores, probabilities) on the public test, validation rows and wild crops."""
    probs = {
        "public": predict(model, data["x_public"], device),
        "val": predict(model, data["x_rows"][data["val"]], device),
        "wild": predict(model, data["x_wild"], device),
    }
    single = predict(model, data["x_public"], device, mirror=False)
    result = {
        "public": scores(probs["public"], data["y_public"]),
        "public_single_pass_accuracy": round(float((single.argmax(1) == data["y_public"]).mean()), 4),
        "val_accuracy": round(float((probs["val"].argmax(1) == data["y_rows"][data["val"]]).mean()), 4),
        "wild": {
            k: v for k, v in scores(probs["wild"], data["y_wild"]).items() if k in ("accuracy", "balanced_accuracy")
        },
    }
    pub = result["public"]
    log(
        f"{name}: public {pub['accuracy']:.2%} (one pass {result['public_single_pass_accuracy']:.2%}), macro F1 "
        f"{pub['macro_f1']:.3f}, val {result['val_accuracy']:.2%}, wild {result['wild']['accuracy']:.2%}; recall "
        + " ".join(f"{k} {v:.0%}" for k, v in pub["recall"].items())
    )
    return result, probs


def plan(args) -> tuple[float, float]:
    """(seconds per compared network, seconds for the student) that fit the deadline."""
    needed = len(args.networks) * (args.budget_s + args.overhead_s) + args.student_s + args.final_s
    available = args.deadline_s - (time.monotonic() - START)
    scale = min(1.0, available / needed)
    if scale < 1:
        log(f"deadline {args.deadline_s:.0f}s: budgets scaled to {scale:.0%}")
    return args.budget_s * scale, args.student_s * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".gpu/fer_gpu.npz")
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget-s", type=float, default=65.0, help="training seconds for each compared network")
    parser.add_argument("--student-s", type=float, default=100.0, help="training seconds for the distilled fernet")
    parser.add_argument("--deadline-s", type=float, default=500.0, help="the whole run ends by then: budgets shrink")
    parser.add_argument("--overhead-s", type=float, default=12.0, help="expected seconds per network besides training")
    parser.add_argument("--final-s", type=float, default=25.0, help="seconds kept for soft labels and saving")
    parser.add_argument("--teachers", type=int, default=3, help="the teacher: mean of the best N networks")
    parser.add_argument("--select", choices=("val", "public"), default="val", help="rank networks for the teacher by")
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--size", type=int, default=Recipe.size)
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--learning-rate", type=float, default=Recipe.learning_rate, help="AdamW's peak rate")
    parser.add_argument("--smoke", action="store_true", help="CPU, a subset, seconds-long budgets: every code path")
    args = parser.parse_args()
    if args.smoke:
        args.budget_s, args.student_s, args.overhead_s, args.final_s = 2.0, 3.0, 1.0, 1.0
        args.size, args.batch_size = 32, 8

    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    gpu = (
        torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()})"
    )
    log(f"device {gpu}; torch {torch.__version__}; deadline {args.deadline_s:.0f}s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = Recipe(size=args.size, batch_size=args.batch_size, learning_rate=args.learning_rate)

    data = load_data(args.data, device, limit=256 if args.smoke else 0)
    log(
        f"data: {len(data['fit'])} fit rows, {len(data['val'])} validation rows, "
        f"{len(data['y_public'])} public test, {len(data['y_wild'])} wild"
    )
    trainer = Trainer(data, recipe, device, smoke=args.smoke)
    budget, student_budget = plan(args)
    results = Results(
        out,
        {
            "device": gpu,
            "torch": torch.__version__,
            "command_args": vars(args),
            "recipe": asdict(recipe),
            "budget_s_each": round(budget, 1),
            "fit_rows": len(data["fit"]),
            "val_rows": len(data["val"]),
        },
    )

    models, probs = {}, {}
    for i, name in enumerate(args.networks):
        torch.manual_seed(args.seed)
        model = make_network(name, recipe).to(device)
        params = sum(p.numel() for p in model.parameters())
        left = args.deadline_s - (time.monotonic() - START) - args.final_s - MIN_STUDENT_SHARE * student_budget
        each = min(budget, left / (len(args.networks) - i) - args.overhead_s)
        if each < budget - 0.5:
            log(f"{name}: behind schedule, budget {each:.0f}s instead of {budget:.0f}s")
        if each < 1:
            log(f"{name}: no time left, skipped")
            continue
        record = {
            "params_m": round(params / 1e6, 2),
            "input_px": 48 if name == "fernet" else recipe.size,
            "budget_s": round(each, 1),
        }
        log(f"{name}: {params / 1e6:.2f}M parameters, training {each:.0f}s at {record['input_px']}px")
        try:
            record.update(trainer.train(model, each, seed=args.seed))
            log(f"{name}: {record['epochs']} epochs, {record['images_per_s']} images/s")
            scored, probs[name] = evaluate(name, model, data, device)
        except Exception as exc:  # one network's failure (memory, a library) must not cost the others
            log(f"{name}: FAILED {exc!r}")
            results.data.setdefault("failed", {})[name] = repr(exc)
            results.save()
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        record.update(scored)
        models[name] = model
        results.data["networks"][name] = record
        results.save()
        if name == "fernet":
            save_fernet(out / "fernet_plain.npz", model, data["x_public"])

    def rank(name: str) -> float:
        record = results.data["networks"][name]
        return record["val_accuracy"] if args.select == "val" else record["public"]["accuracy"]

    if args.teachers == 0:  # a comparison run only (a rerun of one network): no teacher, no student
        log(f"done in {time.monotonic() - START:.0f}s")
        return
    ranked = sorted(models, key=rank, reverse=True)
    members = ranked[: args.teachers]
    log(f"teacher: mean of {', '.join(members)} (ranked by {args.select})")
    teacher_public = np.mean([probs[n]["public"] for n in members], 0)
    teacher_record = {
        "members": members,
        "selected_by": args.select,
        "public": scores(teacher_public, data["y_public"]),
        "val_accuracy": round(
            float((np.mean([probs[n]["val"] for n in members], 0).argmax(1) == data["y_rows"][data["val"]]).mean()), 4
        ),
        "wild": scores(np.mean([probs[n]["wild"] for n in members], 0), data["y_wild"]),
    }
    log(f"teacher: public {teacher_record['public']['accuracy']:.2%}, val {teacher_record['val_accuracy']:.2%}")
    results.data["teacher"] = teacher_record
    results.save()
    np.savez_compressed(
        out / "soft_labels.npz",
        train=np.mean([predict(models[n], data["x_rows"], device) for n in members], 0).astype(np.float16),
        wild=np.mean([probs[n]["wild"] for n in members], 0).astype(np.float16),
        wild_names=data["wild_names"],
        public=teacher_public.astype(np.float16),
        **{f"public_{n}": probs[n]["public"].astype(np.float16) for n in models},
        members=np.array(members),
    )
    log("soft_labels.npz written (teacher's mirror-averaged probabilities for every training row and wild crop)")

    def teacher(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([F.softmax(models[n](x).float(), 1) for n in members]).mean(0)

    left = args.deadline_s - (time.monotonic() - START) - args.overhead_s
    each = min(student_budget, left)
    if each >= 1:
        torch.manual_seed(args.seed + 1)
        student = FerNet().to(device)
        log(f"student: a fresh fernet distilled from {', '.join(members)} for {each:.0f}s")
        record = {"budget_s": round(each, 1), "teachers": members, "teacher_weight": recipe.teacher_weight}
        record.update(trainer.train(student, each, teacher=teacher, seed=args.seed + 1))
        log(f"student: {record['epochs']} epochs, {record['images_per_s']} images/s")
        save_fernet(out / "fernet_student.npz", student, data["x_public"])
        record.update(evaluate("student", student, data, device)[0])
        results.data["student"] = record
        results.save()
    else:
        log("student: no time left, skipped")
    log(f"done in {time.monotonic() - START:.0f}s")
    results.save()


def save_fernet(path: Path, model: FerNet, faces: np.ndarray) -> None:
    """Keras-layout weights plus reference inputs (16 public-test faces, 16 of noise) and the model's
    float32 logits on them, computed on the CPU (no TF32 or bf16) so the port is held to float32 precision."""
    noise = np.random.default_rng(0).integers(0, 256, (16, 48, 48)).astype(np.uint8)
    faces = np.concatenate([faces[:16], noise])
    cpu = copy.deepcopy(model).cpu().float().eval()
    with torch.no_grad():
        ref = cpu(torch.from_numpy(faces).float().unsqueeze(1).contiguous()).numpy()
    np.savez(
        path,
        **model.keras_weights(),
        ref_faces=faces,
        ref_logits=ref.astype(np.float32),
        stages=np.array(FERNET_STAGES),
    )
    log(f"{path.name} written")


if __name__ == "__main__":
    main()
