"""Hyperparameter optimization of neural networks: the Lightning CNN and its objective, TensorBoard, datasets
and devices. Imports torch only inside the functions that train."""
