"""Datasets (folder, zip, bundled faces), image conversion, and the sharded sampler."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from train_fixtures import png_bytes, write_image

from stylegan_fast.train import images as image_ops
from stylegan_fast.train.data import (
    BundledFaces,
    ImageFolderDataset,
    ShardedSampler,
    open_dataset,
)

R = 8


def _float(array_hwc: np.ndarray) -> torch.Tensor:
    """Expected model tensor [C, H, W] of a uint8 HWC (or HW) array, computed directly."""
    array = array_hwc.astype(np.float64)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1) / 127.5 - 1.0).float()


@pytest.fixture
def folder(tmp_path):
    """A small dataset: RGB, greyscale (nested), RGBA, JPEG, 16-bit, a wide image, labels."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    arrays = {
        "a/rgb.png": rng.integers(0, 256, (R, R, 3), dtype=np.uint8),
        "a/b/gray.png": rng.integers(0, 256, (R, R), dtype=np.uint8),
        "d_rgba.png": rng.integers(0, 256, (R, R, 4), dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_image(root / name, array)
    write_image(root / "c.jpg", rng.integers(0, 256, (R, R, 3), dtype=np.uint8), "JPEG")
    sixteen = rng.integers(0, 65536, (R, R), dtype=np.uint16)
    write_image(root / "f_16bit.png", sixteen)
    wide = np.zeros((R, R + 4, 3), dtype=np.uint8)
    wide[:, :2] = (255, 0, 0)
    wide[:, 2 : R + 2] = (0, 255, 0)
    wide[:, R + 2 :] = (0, 0, 255)
    write_image(root / "e_wide.png", wide)
    (root / "notes.txt").write_text("not an image")
    names = ["a/b/gray.png", "a/rgb.png", "c.jpg", "d_rgba.png", "e_wide.png", "f_16bit.png"]
    labels = {name: i % 3 for i, name in enumerate(names)}
    (root / "dataset.json").write_text(json.dumps({"labels": [[n, c] for n, c in labels.items()]}))
    return {"root": root, "arrays": arrays, "sixteen": sixteen, "names": names, "labels": labels}


def test_folder_dataset_converts_every_mode_exactly(folder):
    ds = ImageFolderDataset(folder["root"], resolution=R)
    assert ds.names == folder["names"]  # recursive, sorted, non-images ignored
    assert len(ds) == 6 and ds.label_dim == 3
    items = {name: ds[i] for i, name in enumerate(ds.names)}
    for name, (image, label) in items.items():
        assert image.shape == (3, R, R) and image.dtype == torch.float32
        assert label.tolist() == [float(j == folder["labels"][name]) for j in range(3)]
    arrays = folder["arrays"]
    assert torch.equal(items["a/rgb.png"][0], _float(arrays["a/rgb.png"]))
    gray = _float(arrays["a/b/gray.png"])  # [1, R, R], replicated to three channels
    assert torch.equal(items["a/b/gray.png"][0], gray.expand(3, R, R))
    assert torch.equal(items["d_rgba.png"][0], _float(arrays["d_rgba.png"][:, :, :3]))
    assert torch.equal(
        items["f_16bit.png"][0], _float((folder["sixteen"] >> 8).astype(np.uint8)).expand(3, R, R)
    )
    jpeg = np.asarray(Image.open(folder["root"] / "c.jpg").convert("RGB"))
    assert torch.equal(items["c.jpg"][0], _float(jpeg))
    # The wide image's centred square is the green band exactly.
    green = torch.tensor([-1.0, 1.0, -1.0]).view(3, 1, 1).expand(3, R, R)
    assert torch.equal(items["e_wide.png"][0], green)
    assert float(torch.stack([image for image, _ in items.values()]).abs().max()) <= 1.0


def test_greyscale_dataset_and_resizing(folder):
    ds = ImageFolderDataset(folder["root"], resolution=4, channels=1, labels=False)
    assert ds.label_dim == 0 and ds[0][1].shape == (0,)
    image = ds[ds.names.index("a/rgb.png")][0]
    assert image.shape == (1, 4, 4)
    expected = Image.fromarray(folder["arrays"]["a/rgb.png"]).convert("L")
    expected = expected.resize((4, 4), Image.Resampling.LANCZOS)
    assert torch.equal(image, _float(np.asarray(expected)))
    # A constant image stays constant through crop and resize, in either direction.
    write_image(folder["root"] / "z_const.png", np.full((30, 20), 200, dtype=np.uint8))
    for resolution in (5, 64):
        ds = ImageFolderDataset(folder["root"], resolution=resolution, labels=False)
        const = ds[ds.names.index("z_const.png")][0]
        assert const.shape == (3, resolution, resolution)
        torch.testing.assert_close(
            const, torch.full_like(const, 200 / 127.5 - 1), atol=1 / 127.5, rtol=0
        )


def test_xflip_doubles_the_dataset_with_mirrored_copies(folder):
    plain = ImageFolderDataset(folder["root"], resolution=R)
    flipped = ImageFolderDataset(folder["root"], resolution=R, xflip=True)
    assert len(flipped) == 2 * len(plain)
    for i in range(len(plain)):
        image, label = flipped[i + len(plain)]
        assert torch.equal(image, plain[i][0].flip(-1)) and torch.equal(label, plain[i][1])
        assert torch.equal(flipped[i][0], plain[i][0])
    assert torch.equal(flipped[-1][0], flipped[len(flipped) - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        flipped[len(flipped)]


def test_zip_dataset_matches_folder(folder, tmp_path):
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder["root"].rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder["root"]).as_posix())
    from_folder = ImageFolderDataset(folder["root"], resolution=R, xflip=True)
    from_zip = ImageFolderDataset(archive, resolution=R, xflip=True)
    assert from_zip.names == from_folder.names and from_zip.label_dim == 3
    # A pickled copy (as DataLoader workers get) reopens the archive itself.
    copy = pickle.loads(pickle.dumps(from_zip))
    for i in range(len(from_folder)):
        for a, b in zip(from_folder[i], copy[i]):
            assert torch.equal(a, b)
    loader = torch.utils.data.DataLoader(from_zip, batch_size=4, shuffle=False)
    images, labels = next(iter(loader))
    assert images.shape == (4, 3, R, R) and labels.shape == (4, 3)


def _bad_files(root):
    (root / "bad" / "garbage.png").parent.mkdir(parents=True)
    (root / "bad" / "garbage.png").write_bytes(b"\x89PNG not really" + bytes(range(200)))
    whole = png_bytes(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    (root / "bad" / "truncated.png").write_bytes(whole[: len(whole) // 2])
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), dtype=np.float32)).save(buffer, format="TIFF")
    (root / "bad" / "float.png").write_bytes(buffer.getvalue())  # mode "F", named .png


def test_unusable_images_raise_naming_the_file_or_are_skipped(folder):
    root = folder["root"]
    _bad_files(root)
    with pytest.raises(image_ops.ImageError, match="bad/float.png: unsupported image mode 'F'"):
        ImageFolderDataset(root, resolution=R, labels=False)
    (root / "bad" / "float.png").unlink()
    with pytest.raises(image_ops.ImageError, match="bad/garbage.png: cannot read image"):
        ImageFolderDataset(root, resolution=R, labels=False)
    (root / "bad" / "float.png").write_bytes(b"")
    ds = ImageFolderDataset(root, resolution=R, labels=False, skip_bad=True)
    # A header check cannot see the truncation: the item names the file when loaded.
    assert [name for name, _ in ds.skipped] == ["bad/float.png", "bad/garbage.png"]
    assert ds.num_skipped == 2 and "bad/truncated.png" in ds.names
    with pytest.raises(image_ops.ImageError, match="bad/truncated.png: cannot decode image"):
        ds[ds.names.index("bad/truncated.png")]
    full = ImageFolderDataset(root, resolution=R, labels=False, skip_bad=True, check="full")
    assert [n for n, _ in full.skipped] == ["bad/float.png", "bad/garbage.png", "bad/truncated.png"]
    assert full.names == folder["names"]
    assert "skipped=3" in repr(full)


def test_labels_errors_name_the_problem(folder, tmp_path):
    root = folder["root"]
    write_image(root / "zz_unlabelled.png", np.zeros((R, R), dtype=np.uint8))
    with pytest.raises(ValueError, match="no label for zz_unlabelled.png"):
        ImageFolderDataset(root, resolution=R)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"labels": [["a/rgb.png", -1]]}))
    with pytest.raises(ValueError, match="non-negative int"):
        ImageFolderDataset(root, resolution=R, labels=other)
    other.write_text("{not json")
    with pytest.raises(ValueError, match="other.json: not valid JSON"):
        ImageFolderDataset(root, resolution=R, labels=other)
    other.write_text(json.dumps({"labels": None}))
    assert ImageFolderDataset(root, resolution=R, labels=other).label_dim == 0
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolderDataset(root, resolution=R, labels=tmp_path / "missing.json")


def test_bad_dataset_arguments(folder, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nowhere", resolution=R)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a directory nor a zip"):
        ImageFolderDataset(tmp_path / "file.txt", resolution=R)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable PNG/JPEG images"):
        ImageFolderDataset(tmp_path / "empty", resolution=R)
    for kwargs, message in [
        ({"resolution": 0}, "resolution must be a positive int"),
        ({"resolution": R, "channels": 2}, "channels must be 1 or 3"),
        ({"resolution": R, "check": "quick"}, "check must be one of"),
        ({"resolution": R, "max_images": 0}, "max_images"),
    ]:
        with pytest.raises(ValueError, match=message):
            ImageFolderDataset(folder["root"], **kwargs)
    assert len(ImageFolderDataset(folder["root"], resolution=R, max_images=2, labels=False)) == 2
    (folder["root"] / "dataset.json").unlink()
    assert ImageFolderDataset(folder["root"], resolution=R).label_dim == 0
    with pytest.raises(ValueError, match="labels requested but there is no dataset.json"):
        ImageFolderDataset(folder["root"], resolution=R, labels=True)


def test_bundled_faces_are_the_lfw_faces():
    from skimage.data import lfw_subset

    lfw = lfw_subset()
    native = BundledFaces(resolution=25, channels=1)
    assert len(native) == 100  # the faces; lfw_subset's last 100 crops are non-faces
    for i in (0, 57, 99):
        expected = torch.from_numpy(lfw[i]).float() * 2 - 1
        torch.testing.assert_close(native[i][0][0], expected, atol=1e-6, rtol=0)
    ds = open_dataset(None, 32, xflip=True)
    assert isinstance(ds, BundledFaces) and len(ds) == 200 and ds.label_dim == 0
    image, label = ds[3]
    assert image.shape == (3, 32, 32) and label.shape == (0,)
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
    assert float(image.min()) >= -1 and float(image.max()) <= 1
    assert torch.equal(ds[103][0], image.flip(-1))
    # Resized faces keep the originals' brightness (a sanity check on the resampling).
    assert abs(float(image.mean()) - float(native[3][0].mean())) < 0.02
    with pytest.raises(ValueError, match="only xflip"):
        open_dataset(None, 32, labels=False)


def test_sharded_sampler_one_epoch_is_disjoint_and_covering():
    for n, world in [(10, 3), (12, 4), (5, 1), (3, 4)]:
        shares = [list(ShardedSampler(n, r, world, seed=7, infinite=False)) for r in range(world)]
        assert sorted(sum(shares, [])) == list(range(n))
        assert [len(s) for s in shares] == [
            len(ShardedSampler(n, r, world, infinite=False)) for r in range(world)
        ]
    sampler = ShardedSampler(10, 0, 1, seed=7, infinite=False)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first and sorted(sampler) == list(range(10))
    assert list(ShardedSampler(10, 0, 1, shuffle=False, infinite=False)) == list(range(10))
    assert list(ShardedSampler(10, 0, 1, seed=8, infinite=False)) != first


def _take(sampler, count):
    iterator = iter(sampler)
    return [next(iterator) for _ in range(count)]


def test_sharded_sampler_stream_equals_single_process_global_batches():
    n, world, batch, steps = 7, 3, 2, 5  # crosses several epoch boundaries
    single = _take(ShardedSampler(n, seed=3), batch * world * steps)
    per_rank = [_take(ShardedSampler(n, r, world, seed=3), batch * steps) for r in range(world)]
    for step in range(steps):
        global_batch = single[step * batch * world : (step + 1) * batch * world]
        rank_batches = [share[step * batch : (step + 1) * batch] for share in per_rank]
        assert sorted(sum(rank_batches, [])) == sorted(global_batch)
    # Each epoch of the stream is a permutation.
    for epoch in range(len(single) // n):
        assert sorted(single[epoch * n : (epoch + 1) * n]) == list(range(n))
    # Resuming after `start` items per rank continues the same stream.
    for r in range(world):
        assert _take(ShardedSampler(n, r, world, seed=3, start=4), 6) == per_rank[r][4:10]
    with pytest.raises(TypeError, match="no length"):
        len(ShardedSampler(n))


def test_sharded_sampler_rejects_bad_arguments():
    for kwargs, message in [
        ({"dataset_size": 0}, "dataset_size"),
        ({"dataset_size": 4, "world_size": 0}, "world_size"),
        ({"dataset_size": 4, "rank": 2, "world_size": 2}, "rank must be in"),
        ({"dataset_size": 4, "seed": -1}, "seed"),
        ({"dataset_size": 4, "start": -1}, "start"),
    ]:
        with pytest.raises(ValueError, match=message):
            ShardedSampler(**kwargs)
