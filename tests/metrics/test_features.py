"""Feature networks: preprocessing presets vs their arithmetic, loading from TorchScript and
state-dict files, output shapes accepted, batching, the cache identity, bad inputs."""

import pytest
import torch
import torch.nn.functional as F
from metric_fixtures import make_cnn

from stylegan_fast.metrics import PREPROCESSING, FeatureNet, Preprocessing, load_feature_net


class ChannelMeans(torch.nn.Module):
    """``[N, 3, H, W] -> [N, 4]``: the channel means and the image height, and a
    ``return_features`` keyword like NVlabs' Inception (which must be passed as True)."""

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        if not return_features:
            raise RuntimeError("return_features must be True")
        means = x.to(torch.float32).mean(dim=[2, 3])
        height = torch.full([x.shape[0], 1], float(x.shape[2]))
        return torch.cat([means, height], dim=1)


def test_identity_preprocessing_clamps_only():
    x = torch.tensor([-3.0, -1.0, -0.25, 0.5, 1.0, 2.0]).view(1, 1, 2, 3).expand(2, 3, 2, 3)
    np_expected = x.clamp(-1, 1)
    torch.testing.assert_close(PREPROCESSING["identity"](x), np_expected)


def test_nvlabs_preprocessing_recovers_uint8_pixels():
    # A real image read as uint8 u and scaled to u / 127.5 - 1 goes back to exactly u.
    u = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(2, 3, 16, 16)
    x = u.to(torch.float32) / 127.5 - 1
    out = PREPROCESSING["nvlabs-inception"](x)
    assert out.dtype == torch.uint8
    torch.testing.assert_close(out, u, rtol=0, atol=0)
    # Generated values round to the nearest level, out-of-range values clamp.
    x = torch.tensor([-1.5, -0.999, 0.0, 0.9999, 3.0]).view(1, 1, 1, 5).expand(1, 3, 1, 5)
    expected = torch.tensor([0, 0, 128, 255, 255], dtype=torch.uint8)  # 127.5 rounds to even
    torch.testing.assert_close(PREPROCESSING["nvlabs-inception"](x)[0, 0, 0], expected)


def test_torchvision_preprocessing_resizes_and_normalises():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 20, 20, generator=g) * 2 - 1
    out = PREPROCESSING["torchvision-inception"](x)
    assert out.shape == (2, 3, 299, 299)
    x01 = F.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (x01 - mean) / std, rtol=1e-5, atol=1e-5)


def test_custom_range():
    x = torch.tensor([-1.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = Preprocessing(input_range=(0.0, 255.0))(x)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, 127.5, 255.0]))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_file_with_the_nvlabs_convention(tmp_path):
    path = tmp_path / "net.pt"
    torch.jit.script(ChannelMeans()).save(str(path))
    net = FeatureNet.from_torchscript(path)  # default preset: nvlabs-inception
    u = torch.randint(
        0, 256, (5, 3, 6, 7), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    out = net(u.to(torch.float32) / 127.5 - 1)
    expected = torch.cat([u.float().mean(dim=[2, 3]), torch.full([5, 1], 6.0)], dim=1)
    torch.testing.assert_close(out, expected)
    assert net.identity.startswith("torchscript:")
    assert load_feature_net(path).identity == net.identity  # a path alone: TorchScript


def test_state_dict_file_into_a_module(tmp_path):
    source = make_cnn(seed=3, features=5)
    torch.save(source.state_dict(), tmp_path / "weights.pth")
    net = load_feature_net(tmp_path / "weights.pth", module=make_cnn(seed=4, features=5))
    x = torch.rand(4, 3, 9, 9, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(net(x), source(x))
    # Same class and weights: same cache identity; other weights: another.
    assert net.identity == FeatureNet(source).identity
    assert net.identity != FeatureNet(make_cnn(seed=4, features=5)).identity
    # Weights changed after wrapping change the identity too.
    before = net.identity
    with torch.no_grad():
        net.net[0].bias += 1
    assert net.identity != before


def test_output_shapes_grayscale_and_batching():
    cnn = make_cnn(seed=0, features=6)

    def as_list_of_maps(x):  # pytorch-fid's InceptionV3 returns [..., [N, D, 1, 1]]
        return [x, cnn(x)[:, :, None, None]]

    x = torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        expected = cnn(x)
    torch.testing.assert_close(FeatureNet(as_list_of_maps)(x), expected)
    batched = FeatureNet(cnn, batch_size=3)
    out = torch.cat(list(batched.features([x[:5], x[5:]])))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    # One channel is replicated to three.
    gray = x[:, :1]
    torch.testing.assert_close(FeatureNet(cnn)(gray), FeatureNet(cnn)(gray.expand(-1, 3, -1, -1)))
    # Features come without gradients.
    assert not FeatureNet(cnn)(x.requires_grad_()).requires_grad


def test_bad_inputs_raise(tmp_path):
    cnn = make_cnn(seed=0, features=3)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\], got shape \[3, 8, 8\]"):
        FeatureNet(cnn)(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="3 \\(or 1\\) channels"):
        FeatureNet(cnn)(torch.zeros(2, 4, 8, 8))
    with pytest.raises(TypeError, match="float in \\[-1, 1\\]"):
        FeatureNet(cnn)(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"must return \[N, D\].*got shape \[2, 3, 8, 8\]"):
        FeatureNet(lambda x: x)(torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match="returned str"):
        FeatureNet(lambda x: "features")(torch.zeros(2, 3, 8, 8))
    with pytest.raises(TypeError, match="net must be callable"):
        FeatureNet(42)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        FeatureNet(cnn, batch_size=0)
    with pytest.raises(ValueError, match="preprocessing must be"):
        FeatureNet(cnn, preprocessing="inception")
    with pytest.raises(ValueError, match="no such file"):
        FeatureNet.from_torchscript(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="high > low"):
        Preprocessing(input_range=(1.0, 0.0))
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="not a state dict"):
        FeatureNet.from_state_dict(tmp_path / "list.pth", cnn)
