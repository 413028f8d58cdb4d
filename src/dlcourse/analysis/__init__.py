"""Analyses of trained networks, one module per question.

`landscape`: loss and accuracy along the straight line between two trained models (how flat
a minimum is), the input sensitivity of a model (the Frobenius norm of its input-output
Jacobian), and how rough a training-loss trajectory is. Import the submodule you need:
`from dlcourse.analysis import landscape`.
"""
