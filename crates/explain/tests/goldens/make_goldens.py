"""Golden heatmaps for the explain crate, written by zennit and plain PyTorch.

Usage: python make_goldens.py OUT_DIR

Needs torch 2.13.0 with torchvision==0.28.0, zennit, safetensors and numpy
(`pip install torchvision==0.28.0 zennit safetensors numpy`). The Rust parity test runs this
script into a temporary folder, because the weights (tens of MB) are too big to commit.

For each case it builds a torchvision ResNet with fixed random weights and randomised batch
norm statistics and affine parameters (so that folding batch norm into the convolutions
matters), and writes:
- `<case>.model.safetensors`: the state dict with torchvision names and the metadata of a
  `model` artefact (arch, stem, classes, mean, std, resize 0, crop 0);
- `<case>.images.safetensors`: `images` u8 [N, 3, S, S];
- `<case>.golden.safetensors`: `inputs` (the normalised f32 images), `logits`, `pred`,
  `lrp` (zennit's input relevance [N, 3, S, S] with the reference composite:
  EpsilonAlpha2Beta1 with ResNetCanonizer, its convolution rule replaced by the generalised
  gamma rule with gamma 4, which is the symmetric gamma rule away from exactly-zero outputs;
  target the one-hot of the predicted class), `gradcam` (ReLU of the layer4 activations
  weighted by their spatially averaged gradients, bilinearly upsampled to S x S) and
  `gradient` (the gradient of the predicted logit with respect to the input).
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file
import zennit.composites
import zennit.rules
import zennit.torchvision
import zennit.types
from zennit.attribution import Gradient

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
GAMMA = 4.0

# (name, constructor, stem, classes, side, images)
CASES = [
    ("resnet18_imagenet", torchvision.models.resnet18, "imagenet", 3, 32, 4),
    ("resnet18_small", torchvision.models.resnet18, "small", 2, 16, 3),
    ("resnet50_imagenet", torchvision.models.resnet50, "imagenet", 2, 32, 2),
]


def build(ctor, stem, classes, seed):
    torch.manual_seed(seed)
    model = ctor(weights=None, num_classes=classes)
    if stem == "small":
        model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = torch.nn.Identity()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=gen))
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.2 * torch.randn(n, generator=gen))
    return model.eval()


def reference_composite():
    # The reference's convolution rule: per output, scale whichever of the positive and
    # negative contributions dominates by 1 + gamma. zennit's generalised Gamma rule does
    # exactly that, choosing by the sign of the output.
    composite = zennit.composites.EpsilonAlpha2Beta1(
        canonizers=[zennit.torchvision.ResNetCanonizer()])
    composite.layer_map = [
        (kind, zennit.rules.Gamma(gamma=GAMMA) if kind is zennit.types.Convolution else rule)
        for kind, rule in composite.layer_map
    ]
    return composite


def gradcam(model, x, pred):
    store = {}
    hook = model.layer4.register_forward_hook(lambda m, i, o: store.__setitem__("act", o))
    with torch.enable_grad():
        out = model(x)
        act = store["act"]
        (grad,) = torch.autograd.grad(out.gather(1, pred[:, None]).sum(), act)
    hook.remove()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(1, keepdim=True)).detach()
    return F.interpolate(cam, size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for index, (name, ctor, stem, classes, side, n) in enumerate(CASES):
        model = build(ctor, stem, classes, seed=100 + index)
        gen = torch.Generator().manual_seed(200 + index)
        images = torch.randint(0, 256, (n, 3, side, side), generator=gen, dtype=torch.uint8)
        mean = torch.tensor(MEAN).view(1, 3, 1, 1)
        std = torch.tensor(STD).view(1, 3, 1, 1)
        inputs = ((images.float() / 255.0) - mean) / std

        with torch.no_grad():
            logits = model(inputs)
        pred = logits.argmax(1)
        cam = gradcam(model, inputs, pred)
        x = inputs.clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(model(x).gather(1, pred[:, None]).sum(), x)
        with Gradient(model=model, composite=reference_composite()) as attributor:
            _, relevance = attributor(inputs, torch.eye(classes)[pred])

        state = {k: v.contiguous() for k, v in model.state_dict().items()
                 if not k.endswith("num_batches_tracked")}
        arch = "resnet50" if ctor is torchvision.models.resnet50 else "resnet18"
        metadata = {"arch": arch, "stem": stem, "classes": str(classes),
                    "mean": ",".join(str(v) for v in MEAN), "std": ",".join(str(v) for v in STD),
                    "resize": "0", "crop": "0"}
        save_file(state, str(out / f"{name}.model.safetensors"), metadata=metadata)
        save_file({"images": images.contiguous()}, str(out / f"{name}.images.safetensors"),
                  metadata={"classes": str(classes)})
        save_file({"inputs": inputs.contiguous(), "logits": logits.contiguous(),
                   "pred": pred.to(torch.int64).contiguous(),
                   "lrp": relevance.detach().contiguous(), "gradcam": cam.contiguous(),
                   "gradient": gradient.contiguous()},
                  str(out / f"{name}.golden.safetensors"))
        summary[name] = {"pred": pred.tolist(),
                         "relevance_sum": relevance.flatten(1).sum(1).tolist()}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    np.set_printoptions(precision=4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1])
