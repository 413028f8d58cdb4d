"""Analyses of trained networks, one module per question. Import the submodule you need,
e.g. `from dlcourse.analysis import landscape`.

- `landscape`: loss and accuracy along the straight line between two trained models (how flat
  a minimum is), the input sensitivity of a model (the Frobenius norm of its input-output
  Jacobian), how rough a training-loss trajectory is, and the small checks behind the
  generalization lab's claims.
- `trajectory`: weight trajectories of training runs, projected with PCA.
"""
