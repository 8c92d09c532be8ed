"""The paper's networks: parameter counts, shapes, Caffe's pooling, initialisations, errors."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from lrbench.models import MODELS, build_model, count_parameters, min_input_size  # noqa: E402
from lrbench.models.networks import CNN3, LeNet, pool_out  # noqa: E402

torch.set_num_threads(1)

MNIST = (1, 28, 28)
CIFAR = (3, 32, 32)
DIGITS = (1, 8, 8)


# -- parameter counts ---------------------------------------------------------------------------
def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def fc(nin: int, nout: int) -> int:
    return nin * nout + nout


def resnet_count(n: int, classes: int = 10, cin: int = 3) -> int:
    """He et al.'s CIFAR ResNet-(6n+2), option A: counted from the architecture, layer by layer."""
    total = conv(cin, 16, 3, bias=False) + 2 * 16  # conv1 + bn1 (weight, bias)
    planes_in = 16
    for planes in (16, 32, 64):
        for _ in range(n):
            total += conv(planes_in, planes, 3, False) + 2 * planes
            total += conv(planes, planes, 3, False) + 2 * planes
            planes_in = planes  # option A shortcuts: no parameters
    return total + fc(64, classes)


def test_lenet_has_caffes_431080_parameters():
    expected = conv(1, 20, 5) + conv(20, 50, 5) + fc(50 * 4 * 4, 500) + fc(500, 10)
    assert expected == 431_080
    assert count_parameters(build_model("lenet", MNIST, 10)) == 431_080


def test_cnn3_has_145578_parameters_with_caffes_ceil_pooling():
    # 32 -> 16 -> 8 -> 4 with Caffe's rounding up: ip1 sees 64 * 4 * 4 = 1024 features.
    expected = conv(3, 32, 5) + conv(32, 32, 5) + conv(32, 64, 5) + fc(1024, 64) + fc(64, 10)
    assert expected == 145_578
    model = build_model("cnn3", CIFAR, 10)
    assert count_parameters(model) == 145_578
    assert model.ip1.in_features == 1024


@pytest.mark.parametrize("name,n,count", [
    ("resnet20", 3, 269_722), ("resnet32", 5, 464_154), ("resnet56", 9, 853_018)])
def test_cifar_resnet_counts(name, n, count):
    assert resnet_count(n) == count
    model = build_model(name, CIFAR, 10)
    assert count_parameters(model) == count
    assert model.depth == 6 * n + 2
    # option A: no 1x1 projection convolutions anywhere
    assert all(m.kernel_size == (3, 3) for m in model.modules() if isinstance(m, nn.Conv2d))
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert convs + linears == 6 * n + 2  # the depth counts weighted layers


def test_resnet20_is_about_027m():
    assert round(count_parameters(build_model("resnet20", CIFAR, 10)) / 1e6, 2) == 0.27


def test_small_models_counts():
    assert count_parameters(build_model("mlp", DIGITS, 10)) == fc(64, 128) + fc(128, 10)
    expected = conv(1, 16, 3) + conv(16, 32, 3) + fc(32 * 2 * 2, 64) + fc(64, 10)
    assert count_parameters(build_model("digits-cnn", DIGITS, 10)) == expected


# -- shapes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape,classes", [(MNIST, 10), (CIFAR, 100), ((3, 17, 23), 7)])
def test_forward_shapes(name, shape, classes):
    model = build_model(name, shape, classes)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["lenet", "cnn3", "resnet20", "digits-cnn"])
def test_feature_size_formula_matches_torch_at_every_size(name):
    # build_model sizes the first fc layer from the Caffe formulas; torch must agree, or the
    # forward pass fails with a shape mismatch.
    smallest = min_input_size(name)
    for size in range(smallest, 36):
        model = build_model(name, (1, size, size + 1), 4).eval()
        assert model(torch.zeros(2, 1, size, size + 1)).shape == (2, 4)
    if smallest > 1:
        with pytest.raises(ValueError, match=f"at least {smallest}x{smallest}"):
            build_model(name, (1, smallest - 1, smallest - 1), 4)


def test_caffe_pool_sizes():
    assert [pool_out(s, 3, 2, ceil=True) for s in (32, 16, 8)] == [16, 8, 4]
    assert [pool_out(s, 3, 2, ceil=False) for s in (32, 15, 7)] == [15, 7, 3]
    assert CNN3.feature_size(32) == 4 and LeNet.feature_size(28) == 4


def test_cnn3_average_pooling_divides_by_the_cells_it_covers():
    # Caffe (pad 0) averages a border window that sticks out of the input over the cells inside;
    # on a constant input every output is that constant.
    model = build_model("cnn3", CIFAR, 10)
    out = model.pool2(torch.full((1, 2, 16, 16), 3.0))
    assert out.shape == (1, 2, 8, 8)
    assert torch.allclose(out, torch.full_like(out, 3.0))


def test_lenet_on_digits_fails_clearly():
    with pytest.raises(ValueError, match=r"'lenet' needs inputs of at least 13x13, got 8x8.*mlp"):
        build_model("lenet", DIGITS, 10)


def test_models_adapt_to_channels_and_classes():
    model = build_model("lenet", (3, 32, 32), 100)
    assert model.conv1.in_channels == 3 and model.ip2.out_features == 100
    assert model.ip1.in_features == 50 * 5 * 5
    assert build_model("mlp", (3, 4, 5), 2).fc1.in_features == 60


def test_unknown_model_lists_the_names():
    with pytest.raises(ValueError) as e:
        build_model("vgg16", CIFAR, 10)
    for name in MODELS:
        assert name in str(e.value)


@pytest.mark.parametrize("kwargs,match", [
    (dict(init="he"), "unknown init 'he'"),
    (dict(n_classes=0), "n_classes"),
    (dict(input_shape=(1, 0, 8)), "input_shape"),
    (dict(input_shape="abc"), "input_shape"),
])
def test_bad_arguments(kwargs, match):
    args = dict(name="mlp", input_shape=DIGITS, n_classes=10) | kwargs
    with pytest.raises(ValueError, match=match):
        build_model(**args)


def test_names_are_case_insensitive_and_2d_shapes_mean_one_channel():
    assert count_parameters(build_model(" LeNet ", (28, 28), 10)) == 431_080


# -- initialisations ------------------------------------------------------------------------------
def fan_in(w: torch.Tensor) -> int:
    return w.shape[1] * math.prod(w.shape[2:])


def weighted(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_xavier_is_caffes_uniform_fan_in():
    model = build_model("lenet", MNIST, 10, init="xavier", seed=0)
    for _, m in weighted(model):
        a = math.sqrt(3.0 / fan_in(m.weight))
        w = m.weight.detach()
        assert w.abs().max() <= a
        assert w.abs().max() > 0.95 * a  # spans the range: uniform, not normal
        assert w.std().item() == pytest.approx(a / math.sqrt(3), rel=0.1)
        assert torch.count_nonzero(m.bias) == 0


def test_gaussian_uses_cifar10_quick_stds_for_cnn3():
    model = build_model("cnn3", CIFAR, 10, init="gaussian", seed=0)
    expected = {"conv1": 1e-4, "conv2": 1e-2, "conv3": 1e-2, "ip1": 0.1, "ip2": 0.1}
    for name, m in weighted(model):
        assert m.weight.std().item() == pytest.approx(expected[name], rel=0.15), name
        assert abs(m.weight.mean().item()) < 0.2 * expected[name]
        assert torch.count_nonzero(m.bias) == 0


def test_gaussian_is_std_001_elsewhere():
    model = build_model("lenet", MNIST, 10, init="gaussian", seed=0)
    for name, m in weighted(model):
        if m.weight.numel() >= 1000:
            assert m.weight.std().item() == pytest.approx(0.01, rel=0.1), name


@pytest.mark.parametrize("name", ["resnet20", "lenet"])
def test_msra_is_he_normal_fan_in(name):
    model = build_model(name, CIFAR, 10, init="msra", seed=0)
    for layer, m in weighted(model):
        if m.weight.numel() >= 2000:
            expected = math.sqrt(2.0 / fan_in(m.weight))
            assert m.weight.std().item() == pytest.approx(expected, rel=0.1), layer
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


def test_default_is_torchs_own():
    # torch's Conv2d/Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights, non-zero biases.
    model = build_model("lenet", MNIST, 10, init="default", seed=0)
    w = model.ip1.weight
    bound = 1.0 / math.sqrt(fan_in(w))
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert torch.count_nonzero(model.ip1.bias) > 0
    xavier = build_model("lenet", MNIST, 10, init="xavier", seed=0)
    assert xavier.ip1.weight.abs().max() > 1.5 * bound  # sqrt(3) times wider


def test_seed_fixes_weights_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("digits-cnn", DIGITS, 10, init="msra", seed=3)
    b = build_model("digits-cnn", DIGITS, 10, init="msra", seed=3)
    c = build_model("digits-cnn", DIGITS, 10, init="msra", seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
