"""Training: the WSD schedule, the data mixture, resumable state, and the accelerate loop."""
