"""Write the fixtures of the models crate's torchvision parity test into OUT_DIR.

Usage: make_goldens.py OUT_DIR

Requires torch 2.13.0, torchvision==0.28.0 and safetensors (install them with
`pip install torchvision==0.28.0 safetensors` into the project's venv). For each case it
writes `<case>.weights.safetensors` (the torchvision state dict, converted by
scripts/torchvision_weights.py's `convert`) and `<case>.expected.safetensors` holding fixed
inputs `x` and torchvision's eval-mode `logits` and penultimate `features`. The networks are
randomly initialised (torch seed 0) and their batch-norm affine parameters and running
statistics are randomised too, so that eval-mode batch norm is not an identity. It also
writes `transform.safetensors`: u8 images and torchvision's Resize(16, bilinear, no
antialias) + CenterCrop(12) + ToDtype/255 + Normalize(ImageNet) of them.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))

import torch  # noqa: E402
import torchvision  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from torchvision_weights import build, convert  # noqa: E402

CASES = [
    # name, arch, small stem, classes, input side
    ("resnet18", "resnet18", False, 3, 40),
    ("resnet18_small", "resnet18", True, 2, 16),
    ("resnet50", "resnet50", False, 3, 32),
]


def randomise_batch_norms(model, generator):
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))


def features(model, x):
    h = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    h = model.layer4(model.layer3(model.layer2(model.layer1(h))))
    return torch.flatten(model.avgpool(h), 1)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, arch, small, classes, side in CASES:
        model = build(arch, pretrained=False, classes=classes, small_stem=small, seed=0)
        generator = torch.Generator().manual_seed(1)
        randomise_batch_norms(model, generator)
        model.eval()
        x = torch.randn(3, 3, side, side, generator=generator)
        with torch.no_grad():
            logits = model(x)
            feats = features(model, x)
        convert(model, os.path.join(out_dir, f"{name}.weights.safetensors"))
        save_file({"x": x.contiguous(), "logits": logits.contiguous(), "features": feats.contiguous()},
                  os.path.join(out_dir, f"{name}.expected.safetensors"))

    generator = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (2, 3, 21, 18), dtype=torch.uint8, generator=generator)
    transform = v2.Compose([
        v2.Resize((16, 16), interpolation=v2.InterpolationMode.BILINEAR, antialias=False),
        v2.CenterCrop(13),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    save_file({"images": images.contiguous(), "transformed": transform(images).contiguous()},
              os.path.join(out_dir, "transform.safetensors"))
    print(f"torchvision {torchvision.__version__}: fixtures written to {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1])
