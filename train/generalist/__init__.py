"""The generalist: a flow-matching transformer that plays many pieces (issue 8).

Modules: `config` (run configuration, model sizes), `model` (the transformer and observation
tokenisation), `flow` (rectified-flow loss, Euler sampling), `data` (window sources),
`training` (sharded steps, checkpoints, the loop), `rollout` (chunked inference in the batched
env, evaluation, reports), `cli` (`mjx-piano generalist train|eval`).
"""
