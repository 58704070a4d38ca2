"""PyTorch reference implementation of Pixel-wise Attentional Gating (Kong & Fowlkes, CVPR 2019).

Training and export are development-time tools; the Rust runtime never needs Python.
"""
