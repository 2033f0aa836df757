"""growup: the 'Grow Up and Merge' study (arXiv 2512.10772) as a reproducible package.

Importing the package registers the `hyperllama` architecture with the transformers Auto classes,
so released and cloned checkpoints load with `AutoModelForCausalLM.from_pretrained(path)`.
"""

from growup.models.hyperllama import register as _register_hyperllama

__version__ = "0.1.0"

_register_hyperllama()
