"""Thin adapters from an LRBench policy to a deep-learning framework's LR schedule API.

Import the one you need; this package itself imports no framework:

- ``lrbench.integrations.torch``: ``PolicyLR``, a ``torch.optim.lr_scheduler.LRScheduler``.
- ``lrbench.integrations.jax``: ``to_optax``, an optax schedule.
- ``lrbench.integrations.keras``: ``PolicySchedule``, a Keras ``LearningRateSchedule``.

Every adapter follows the policy's convention: the first optimizer step uses ``policy(0)``.
"""
