"""Merging: the study's merge grid as mergekit YAML configs, run through mergekit's Python API."""
