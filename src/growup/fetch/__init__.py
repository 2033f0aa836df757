"""Runs fetched instead of trained: a published checkpoint, a Hub base, or a local folder."""
