"""GPUs' peak dense bf16 FLOP/s, for the budget's GPU-hours and the training log's MFU.

Data only, no heavy imports: `growup budget --help` lists the GPUs without loading torch.
"""

from __future__ import annotations

# Peak dense (no structured sparsity) bf16 tensor FLOP/s of one GPU, from the vendors' datasheets.
# NVIDIA states bf16 "with sparsity" for Hopper; the dense figure is half of it.
GPUS: dict[str, float] = {
    # NVIDIA H100 Tensor Core GPU datasheet, H100 SXM: BF16 Tensor Core 1,979 TFLOPS with sparsity.
    "h100-sxm": 989.4e12,
    # Same datasheet, H100 PCIe (later "H100 PCIe 80GB"): 1,513 TFLOPS with sparsity.
    "h100-pcie": 756.5e12,
    # NVIDIA H200 Tensor Core GPU datasheet, H200 SXM: 1,979 TFLOPS with sparsity (the H100's compute).
    "h200": 989.4e12,
    # NVIDIA A100 Tensor Core GPU datasheet: BF16 Tensor Core 312 TFLOPS (624 with sparsity).
    "a100": 312.0e12,
    # AMD Instinct MI250X datasheet: 383 TFLOPS peak bf16 per module (two GCDs; SLURM on LUMI counts a
    # GCD as one GPU, so there one "GPU" is half of this).
    "mi250x": 383.0e12,
    # AMD Instinct MI300X datasheet: 1,307.4 TFLOPS peak bf16 dense.
    "mi300x": 1307.4e12,
}
# torch.cuda.get_device_name() substrings (lower case, most specific first) -> GPUS key, for MFU.
DEVICE_NAMES = (
    ("h100 pcie", "h100-pcie"),
    ("h100", "h100-sxm"),
    ("h200", "h200"),
    ("a100", "a100"),
    ("mi250x", "mi250x"),
    ("mi300x", "mi300x"),
)
DEFAULT_GPU = "h100-sxm"
DEFAULT_MFU = 0.4


def device_peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of a device by its torch name (None when the table lacks it)."""
    name = device_name.lower()
    return next((GPUS[key] for part, key in DEVICE_NAMES if part in name), None)
