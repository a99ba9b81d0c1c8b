"""Times PyTorch's fused Adam step on gradients of ordinary and of tiny size.

A gradient of 1e-22 squares to 1e-44, below float32's normal range, so Adam's second-moment
estimate fills with denormal numbers, which many CPUs compute slowly. Prints the milliseconds
per step of one (1000, 1000) parameter, 2 threads, with PyTorch's flush-to-zero off and on.
Run from the repository root: `python scripts/adam_tiny_gradients.py`.
"""

import time

import torch

STEPS = 200


def step_milliseconds(gradient_scale: float) -> float:
    """Mean milliseconds of a fused Adam step on gradients of the given scale, warmed up."""
    generator = torch.Generator().manual_seed(0)
    parameter = torch.nn.Parameter(0.03 * torch.randn(1000, 1000, generator=generator))
    optimizer = torch.optim.Adam([parameter], lr=2e-3, fused=True)
    gradient = gradient_scale * torch.randn(1000, 1000, generator=generator)
    for _ in range(30):
        parameter.grad = gradient.clone()
        optimizer.step()
    started = time.perf_counter()
    for _ in range(STEPS):
        parameter.grad = gradient.clone()
        optimizer.step()
    return 1e3 * (time.perf_counter() - started) / STEPS


def main() -> None:
    """Prints each setting's time per step."""
    torch.set_num_threads(2)
    for flush in (False, True):
        torch.set_flush_denormal(flush)
        for scale in (1e-3, 1e-22):
            print(f"flush_denormal={flush!s:5} gradients of {scale:g}: "
                  f"{step_milliseconds(scale):.3f} ms per step")


if __name__ == "__main__":
    main()
