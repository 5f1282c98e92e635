"""Weights shipped with semsim (see manifest.json and semsim.weights.resolve_weights)."""
