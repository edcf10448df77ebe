"""Singular values of batches of equally shaped matrices, by four methods.

Every method but ``randomized`` takes the square roots of the eigenvalues of the Gram matrix
``W^T W`` (or ``W W^T``, whichever is smaller; BLAS ``syrk``, see ``gram_matrix``) from LAPACK's
symmetric solver (``torch.linalg.eigvalsh``, syevd), and so returns every singular value; they
differ in precision:

- ``exact``: float64 Gram, float64 solver. Agrees with numpy's float64 SVD to about 1e-12 on the
  top values and 1e-6 over the whole spectrum (tests compare them).
- ``gram32_eig64``: float32 Gram (half the time of the float64 one), float64 solver. Within 1e-8
  of float64 on the top 64 values of 1B-shape matrices; the ESD alpha moves by up to 5e-6.
- ``gram32_eig32``: float32 Gram and float32 solver: the fastest, within about 6e-6 relative on the
  top 64 values of flat and heavy-tailed spectra (first-order perturbation: an eigenvalue moves by
  ``v^T E v`` for the round-off ``E`` of the Gram matrix, which averages out along the top
  eigenvectors; the bound grows with ``s_1^2 / s_i^2``, so small values are less accurate).
- ``randomized``: subspace iteration (Halko, Martinsson, Tropp 2011, algorithm 4.4), the top k
  only: a Gaussian sketch of ``k + oversampling`` columns, ``power_iterations`` re-orthonormalised
  rounds, then the exact singular values of the small projected matrix. On flat weight spectra it
  needs generous settings, and at 1B shapes it is no faster than ``exact`` and 7e-3 off; kept for
  explicit use (very large sides with small k), never chosen by ``auto``.

``auto`` picks the fastest method measured at the accuracy the output needs
(``benchmarks/svd_methods.py`` on the 1B shapes 2048 x 8192, 2048 x 2048 and 512 x 2048, and on
SmolLM2's matrices) whose written results do not depend on the number of threads:
- the top k values (k finite, the paper's analysis): ``gram32_eig64``, within 1e-6 relative of
  float64 on the top 64 (1e-8 at 1B shapes), checked on every run against float64 on a sample of
  matrices (``distchar.spectra.model.accuracy_check``; past ``svd.tolerance`` the stage recomputes
  in float64); its ESD alpha moves by up to 5e-6 from float64's (SmolLM2).
- every value (``k: all``, WeightWatcher's ESD alpha to 1e-6): ``exact``.
``gram32_eig32`` is faster still (its solver is the cost at 1B shapes) but LAPACK's float32
solvers, MKL's and OpenBLAS's, return different last bits with a different number of threads:
its singular values then differ at 1e-7, which shows in the 8 digits the stage writes, so a rerun
with other threads (pytest's one, DVC's two) would not give the same files. Its ESD alpha also
moves by up to 7e-4 on SmolLM2 and 0.03 on a synthetic 1B shape. The BLAS ``syrk`` Gram matrix,
float32 or float64, is the same to the bit whatever the threads (tested: ``distchar analyze``
under pytest's one thread writes the files of the pipeline's run).
"""

from __future__ import annotations

import scipy.linalg.blas
import torch

GRAM_PRECISION = {"exact": (torch.float64, torch.float64), "gram32_eig64": (torch.float32, torch.float64),
                  "gram32_eig32": (torch.float32, torch.float32)}  # fmt: skip
"""Gram method -> (dtype of the Gram product, dtype of the eigen-solver)."""


def choose_method(k: int | None, method: str) -> str:
    """The method used for a matrix when ``k`` values are kept (None: every value)."""
    if method != "auto":
        return method
    return "exact" if k is None else "gram32_eig64"


def working_bytes(shape: tuple[int, int], method: str, k: int | None, oversampling: int = 128) -> int:
    """Memory one matrix of ``shape`` needs under ``method``: the float32 matrix, plus the Gram matrix
    (and the solver's copy of it) or the randomized sketches."""
    m, n = shape
    side = min(shape)
    if method == "randomized":
        width = min((k or side) + oversampling, side)
        return 4 * (m * n + 3 * max(m, n) * width)
    gram_dtype, eig_dtype = GRAM_PRECISION[method]
    return 4 * m * n + side * side * (gram_dtype.itemsize + eig_dtype.itemsize)


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """The smaller Gram matrix of one matrix, ``a^T a`` or ``a a^T``, in ``a``'s dtype.

    On the CPU only its upper triangle is computed and filled (BLAS ``syrk``, through SciPy: half
    the flops of the full product, 0.11 s against 0.19 s for a float32 2048 x 8192); the solver
    reads that triangle (``UPLO="U"``). On CUDA it is the full product.
    """
    if a.device.type != "cpu":
        return a.mT @ a if a.shape[0] >= a.shape[1] else a @ a.mT
    syrk = scipy.linalg.blas.dsyrk if a.dtype == torch.float64 else scipy.linalg.blas.ssyrk
    # a C-ordered (m, n) array is a Fortran-ordered (n, m) one, a.T: syrk reads it without a copy
    transposed = a.contiguous().numpy().T
    tall = a.shape[0] >= a.shape[1]
    return torch.from_numpy(syrk(1.0, transposed, trans=0 if tall else 1))


def gram_singular_values(matrices: torch.Tensor, method: str = "exact") -> torch.Tensor:
    """All singular values, descending, of a batch (B, m, n) by a Gram method; (B, min(m, n)) float64.

    A float64 Gram matrix is formed from one float64 copy of one matrix at a time, so the batch
    itself is never held in float64 (twice its float32 size).
    """
    gram_dtype, eig_dtype = GRAM_PRECISION[method]
    side = min(matrices.shape[-2:])
    gram = torch.empty((matrices.shape[0], side, side), dtype=gram_dtype, device=matrices.device)
    for i, matrix in enumerate(matrices):
        gram[i] = gram_matrix(matrix.to(gram_dtype))
    eigenvalues = torch.linalg.eigvalsh(gram.to(eig_dtype), UPLO="U").flip(-1)
    return eigenvalues.to(torch.float64).clamp_min(0).sqrt()


def exact_singular_values(matrices: torch.Tensor) -> torch.Tensor:
    """All singular values, descending, of a batch (B, m, n) in float64: the reference of every check."""
    return gram_singular_values(matrices, "exact")


def randomized_singular_values(
    matrices: torch.Tensor,
    k: int,
    oversampling: int,
    power_iterations: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Approximate top-k singular values, descending, of a batch (B, m, n); returns (B, k) float64."""
    a = matrices.to(torch.float32)
    if a.shape[-2] < a.shape[-1]:
        a = a.mT  # iterate on the tall orientation: the sketch lives in the smaller space
    width = min(k + oversampling, a.shape[-1])
    omega = torch.randn((*a.shape[:-2], a.shape[-1], width), generator=generator, device="cpu").to(a.device)
    q, _ = torch.linalg.qr(a @ omega)
    for _ in range(power_iterations):
        z, _ = torch.linalg.qr(a.mT @ q)
        q, _ = torch.linalg.qr(a @ z)
    projected = (q.mT @ a).to(torch.float64)
    return torch.linalg.svdvals(projected)[..., :k]


def singular_values_by(
    matrices: torch.Tensor,
    k: int | None,
    method: str,
    oversampling: int = 128,
    power_iterations: int = 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The values ``method`` (not ``auto``) computes for a batch: the top k under ``randomized``,
    every value otherwise (callers keep the top k)."""
    if method == "randomized":
        if k is None:
            raise ValueError("the randomized method needs a finite k")
        return randomized_singular_values(matrices, k, oversampling, power_iterations, generator)
    return gram_singular_values(matrices, method)


def top_singular_values(
    matrices: torch.Tensor,
    k: int | None,
    method: str = "auto",
    oversampling: int = 128,
    power_iterations: int = 8,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, str]:
    """Top-k singular values of a batch of equally shaped matrices (B, m, n).

    Args:
        matrices: the batch; on CUDA the work stays there.
        k: number of values per matrix; None for all of them.
        method: ``exact``, ``gram32_eig64``, ``gram32_eig32``, ``randomized`` or ``auto`` (module docstring).
        oversampling: extra sketch columns of the randomized method.
        power_iterations: rounds of the randomized method.
        generator: the randomized method's random stream, for reproducible sketches.

    Returns:
        (values, method used): values (B, k) float64 on the CPU, descending.
    """
    shape = tuple(matrices.shape[-2:])
    if k is not None and k > min(shape):
        raise ValueError(f"k = {k} exceeds the smaller side of a {shape[0]} x {shape[1]} matrix")
    used = choose_method(k, method)
    values = singular_values_by(matrices, k, used, oversampling, power_iterations, generator)
    return (values if k is None else values[..., :k]).cpu(), used
