"""growup: the 'Grow Up and Merge' study (arXiv 2512.10772) as a reproducible package.

Importing `growup.models` (which every model-loading module does) registers the `hyperllama`
architecture with the transformers Auto classes, so released and cloned checkpoints load with
`AutoModelForCausalLM.from_pretrained(path)`. The package root stays light: data and report
verbs never pay for importing transformers.
"""

__version__ = "0.1.0"
