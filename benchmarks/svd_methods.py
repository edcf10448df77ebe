"""Which way to the top-k singular values of a 1B-shape projection matrix: time and accuracy per method.

    python benchmarks/svd_methods.py [--shapes 2048x8192,2048x2048,512x2048] [--k 64] [--repeats 2]

For each shape, two test matrices: Gaussian entries (a Marchenko-Pastur spectrum, as flat as a
weight spectrum gets: the hardest case for an iterative method) and the same singular vectors with
a heavy-tailed spectrum (s_i ~ i^-0.5, as trained weights show). Each candidate runs single-batch
on the CPU, timed best of ``--repeats``; its top k values are compared with LAPACK's float64 SVD:
- ``exact64``: float64 Gram matrix, float64 ``eigvalsh`` (the pipeline's ``exact`` today);
- ``gram32_eig64``: float32 Gram (one GEMM), float64 ``eigvalsh``;
- ``gram32_eig32``: float32 Gram and float32 ``eigvalsh``;
- ``gram32_topk``: float32 Gram, then only the top k eigenvalues (LAPACK ``syevr`` by index);
- ``krylov``: block Krylov (Musco and Musco 2015) on W in float32, block k + 16, stopping when the
  top k Ritz values move less than 1e-6 relative between iterations (at most 12);
- ``randomized``: the pipeline's subspace iteration (128 extra columns, 8 power iterations).
Also the float32 GEMM throughput (GFLOP/s of a 4096 x 4096 x 4096 product), which prices the Gram.
Writes results/svd_methods.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
import torch
from common import write_results

from distchar.spectra.singular_values import exact_singular_values, randomized_singular_values


def gemm_gflops(n: int = 4096, repeats: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _gram32(w: torch.Tensor) -> torch.Tensor:
    return w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w


def gram32_eig64(w: torch.Tensor, k: int) -> np.ndarray:
    return torch.linalg.eigvalsh(_gram32(w).double()).flip(-1)[:k].clamp_min(0).sqrt().numpy()


def gram32_eig32(w: torch.Tensor, k: int) -> np.ndarray:
    return torch.linalg.eigvalsh(_gram32(w)).flip(-1)[:k].clamp_min(0).sqrt().double().numpy()


def gram32_topk(w: torch.Tensor, k: int) -> np.ndarray:
    gram = _gram32(w).double().numpy()
    n = gram.shape[0]
    values = scipy.linalg.eigh(gram, eigvals_only=True, subset_by_index=[n - k, n - 1], driver="evr")
    return np.sqrt(np.clip(values[::-1], 0, None))


def krylov(w: torch.Tensor, k: int, block: int = 16, tol: float = 1e-6, max_iter: int = 12) -> tuple[np.ndarray, int]:
    """Top k singular values by block Krylov: the space [WΩ, (WWᵀ)WΩ, ...], Rayleigh-Ritz at each step."""
    a = w if w.shape[0] >= w.shape[1] else w.T  # tall: m >= n
    generator = torch.Generator().manual_seed(0)
    omega = torch.randn(a.shape[1], k + block, generator=generator)
    q, _ = torch.linalg.qr(a @ omega)
    basis = [q]
    previous = None
    for iteration in range(1, max_iter + 1):
        z = a @ (a.T @ basis[-1])
        for b in basis:  # block Gram-Schmidt, twice: the space must stay orthonormal in float32
            z -= b @ (b.T @ z)
        for b in basis:
            z -= b @ (b.T @ z)
        q, _ = torch.linalg.qr(z)
        basis.append(q)
        space = torch.cat(basis, dim=1)
        values = torch.linalg.svdvals((space.T @ a).double())[:k]
        if previous is not None and float(((values - previous).abs() / values).max()) < tol:
            return values.numpy(), iteration
        previous = values
    return values.numpy(), max_iter


def heavy_tailed(w: torch.Tensor) -> torch.Tensor:
    """``w``'s singular vectors with s_i = s_1 i^-0.5."""
    u, s, vh = torch.linalg.svd(w.double(), full_matrices=False)
    shaped = s[0] * torch.arange(1, s.numel() + 1, dtype=torch.float64) ** -0.5
    return ((u * shaped) @ vh).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="2048x8192,2048x2048,512x2048")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    for shape in args.shapes.split(","):
        m, n = (int(x) for x in shape.split("x"))
        gaussian = torch.randn(m, n, generator=torch.Generator().manual_seed(m * n)) * 0.02
        for spectrum, w in (("gaussian", gaussian), ("heavy_tailed", heavy_tailed(gaussian))):
            reference = np.linalg.svd(w.double().numpy(), compute_uv=False)[: args.k]
            candidates = {
                "exact64": lambda w=w: exact_singular_values(w[None])[0, : args.k].numpy(),
                "gram32_eig64": lambda w=w: gram32_eig64(w, args.k),
                "gram32_eig32": lambda w=w: gram32_eig32(w, args.k),
                "gram32_topk": lambda w=w: gram32_topk(w, args.k),
                "krylov": lambda w=w: krylov(w, args.k),
                "randomized": lambda w=w: randomized_singular_values(
                    w[None], args.k, 128, 8, torch.Generator().manual_seed(0))[0].numpy(),
            }  # fmt: skip
            for name, run in candidates.items():
                seconds, out = [], None
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    out = run()
                    seconds.append(time.perf_counter() - started)
                iterations = None
                if isinstance(out, tuple):
                    out, iterations = out
                error = float(np.max(np.abs(out - reference) / reference))
                rows.append({"shape": shape, "spectrum": spectrum, "method": name, "seconds": round(min(seconds), 3),
                             "max_rel_error": float(f"{error:.3g}"), "iterations": iterations})  # fmt: skip
                print(rows[-1], flush=True)
    write_results("svd_methods", {"k": args.k, "gemm_gflops": round(gemm_gflops(), 1), "rows": rows})


if __name__ == "__main__":
    main()
