"""The paper's networks and their weight initialisations (torch).

``build_model(name, input_shape, n_classes, init='default', seed=None)`` builds one of:

============== ===========================================================================
``lenet``      Caffe's LeNet: conv 20@5x5, max-pool 2, conv 50@5x5, max-pool 2, fc 500, ReLU,
               fc 10. 431,080 parameters on 1x28x28 (MNIST).
``cnn3``       Caffe's ``cifar10_quick``: conv 32@5x5 p2, max-pool 3/2, ReLU, conv 32@5x5 p2,
               ReLU, avg-pool 3/2, conv 64@5x5 p2, ReLU, avg-pool 3/2, fc 64, fc 10; pooling in
               Caffe's ceil mode. 145,578 parameters on 3x32x32 (CIFAR-10).
``resnet20/32/56`` He et al. (2016) CIFAR ResNets, option A shortcuts (identity, zero-padded
               channels, stride-2 subsampling; no parameters). 269,722 / 464,154 / 853,018
               parameters on 3x32x32 with 10 classes.
``mlp``        a small MLP for 8x8 digits (or any input): flatten, fc 128, ReLU, fc classes.
``digits-cnn`` a small CNN for 8x8 digits: conv 16@3x3 p1, ReLU, max-pool 2, conv 32@3x3 p1,
               ReLU, max-pool 2, fc 64, ReLU, fc classes.
============== ===========================================================================

Every model adapts to ``input_shape`` (C, H, W) and ``n_classes``: the number of input channels
and the size of the first fully connected layer follow the input. An input too small for a
network's convolutions and poolings (LeNet needs at least 13x13, CNN3 and the ResNets at least
1x1 after their poolings, i.e. any size; digits-cnn at least 2x2) raises ValueError naming the
smallest size that works and a model that fits.

Initialisations (SPEC Table II), chosen with ``init``:

- ``'default'``: torch's own initialisation of each layer, unchanged.
- ``'xavier'``: Caffe's ``xavier`` filler, weights U(-a, a) with a = sqrt(3 / fan_in) (Caffe's
  default ``variance_norm: FAN_IN``, not torch's ``xavier_uniform_`` which uses fan_in + fan_out),
  biases 0. The MNIST / LeNet setting.
- ``'gaussian'``: Caffe's ``gaussian`` filler, weights N(0, std^2), biases 0. For ``cnn3`` the
  per-layer stds of ``cifar10_quick_train_test.prototxt`` (conv1 0.0001, conv2 and conv3 0.01,
  ip1 and ip2 0.1); for every other model std 0.01 (the std of Caffe's LeNet/AlexNet examples).
  The CIFAR-10 / CNN3 setting.
- ``'msra'``: Caffe's ``msra`` filler (He et al. 2015), weights N(0, 2 / fan_in), biases 0;
  torch's ``kaiming_normal_(mode='fan_in', nonlinearity='relu')``. The CIFAR-10 / ResNet setting.

Batch-norm layers always start at weight 1 and bias 0. ``seed`` makes the initial weights a
pure function of the seed without disturbing torch's global random state.

Caffe's ``lr_mult: 2`` for biases is not reproduced: every parameter gets the policy's LR.
"""

from lrbench.models.registry import (
    INITS,
    MODELS,
    build_model,
    count_parameters,
    initialize,
    min_input_size,
)

__all__ = ["INITS", "MODELS", "build_model", "count_parameters", "initialize", "min_input_size"]
