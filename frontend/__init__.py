"""Frontends: capture a PyTorch program and import it into the kiln + torch dialects."""
