"""The study's models: HyperLlama, HyperCloning, and FLOP/parameter accounting.

Importing this package registers the `hyperllama` architecture with the transformers Auto
classes (see `growup.models.hyperllama.register`).
"""

from growup.models.hyperllama import register as _register_hyperllama

_register_hyperllama()
