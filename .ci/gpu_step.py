"""One training step that runs every gradflow kernel, for compute-sanitizer (.ci/gpu-check).

CuPy's memory pool is switched off, so each array is its own cudaMalloc and memcheck sees
any access past the end of one.
"""
import cupy

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import nn

cupy.cuda.set_allocator(None)
gf.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 12, 3, stride=2, groups=4, dilation=2, padding=2), nn.AvgPool2d(2, ceil_mode=True),
    nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(), nn.Linear(72, 10),
).to("cuda")
x = gf.randn(5, 3, 17, 19, device="cuda")
y = gf.tensor([0, 3, 9, -100, 4], device="cuda")
weight = gf.rand(10, device="cuda") + 0.5
for opt in (gf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            gf.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True),
            gf.optim.RMSprop(model.parameters(), centered=True, momentum=0.5),
            gf.optim.Adagrad(model.parameters())):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y, weight=weight, label_smoothing=0.1)
    loss.backward()
    opt.step()
gf.cuda.synchronize()
print(f"one step per optimizer ran; last loss {loss.item():.6f}")
