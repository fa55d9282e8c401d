"""Hydra launcher plugin of ocrdet (Hydra finds launchers only inside the `hydra_plugins` namespace package)."""
