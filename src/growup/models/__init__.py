"""The study's models: HyperLlama, HyperCloning, and FLOP/parameter accounting."""
