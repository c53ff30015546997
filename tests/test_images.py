"""snake images: the ImageNet-style pipeline, its crops, and the command."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from snake._apps import _images

if TYPE_CHECKING:
    from pathlib import Path


@given(st.integers(1, 2000), st.integers(1, 2000), st.integers(0, 2**32))
def test_random_resized_crops_lie_inside_the_image(width: int, height: int, seed: int) -> None:
    import random

    left, top, w, h = _images._crop_box(random.Random(seed), width, height)
    assert left >= 0
    assert top >= 0
    assert w > 0
    assert h > 0
    assert left + w <= width
    assert top + h <= height


def test_decode_gives_normalized_chw_float32_the_same_for_a_seed(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "a.jpg"
    Image.new("RGB", (320, 240), (255, 0, 128)).save(path)
    data = path.read_bytes()
    a = _images.decode((3, data), seed=1)
    assert a.shape == (3, 224, 224)
    assert a.dtype == np.float32
    assert np.allclose(a[0], (1 - 0.485) / 0.229, atol=0.05)  # red channel at 255, normalized
    assert np.array_equal(a, _images.decode((3, data), seed=1))
    assert a.shape == _images.decode((3, data), seed=1, draft=True).shape


async def test_the_pipeline_gives_batches_of_every_image_once(tmp_path: Path) -> None:
    from PIL import Image

    for i in range(10):
        Image.new("RGB", (100, 80), (i * 20, 0, 0)).save(tmp_path / f"{i}.jpg")
    pipeline = _images.pipeline(str(tmp_path), batch_size=4)
    batches = await pipeline.collect()
    assert [b.shape for b in batches] == [(4, 3, 224, 224), (4, 3, 224, 224), (2, 3, 224, 224)]
    reds = sorted(
        round(float(b[k, 0].mean() * 0.229 + 0.485) * 255 / 20)
        for b in batches
        for k in range(len(b))
    )
    assert reds == list(range(10))  # each image once, shuffled


def test_snake_images_makes_a_synthetic_set_and_prints_images_per_second(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "snake._apps._cli", "images", "--count", "12", "--batch-size", "5"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("12 images of (3, 224, 224) float32 from ")
    assert lines[1].endswith("decoding in threads)")
    assert "images/s" in lines[1]
    assert any("par_map(partial(load_batch))" in line for line in lines)
    assert lines[-1].startswith("elapsed ")
    assert len(list((tmp_path / "snake-images-12-500x375").glob("*.jpg"))) == 12


@given(
    st.sampled_from([(500, 375), (1000, 750), (1600, 1200), (4000, 3000)]), st.integers(0, 2**32)
)
def test_draft_decodes_at_the_smallest_scale_that_keeps_the_crop_full_size(
    size: tuple[int, int], seed: int
) -> None:
    import io
    import random

    from PIL import Image

    image = Image.open(io.BytesIO(_jpeg(size)))
    box = _images._crop_box(random.Random(seed), *size)
    left, top, w, h = _images._draft(image, box, 224)
    scale = round(size[0] / image.size[0])
    assert scale in (1, 2, 4, 8)
    assert (left, top, w, h) == pytest.approx(tuple(v / scale for v in box))
    assert scale == 1 or min(w, h) >= 224 - 1e-9  # the crop keeps its full resolution
    assert scale == 8 or min(box[2], box[3]) / (2 * scale) < 225  # and no smaller scale would
    image.load()
    assert left + w <= image.size[0] + 1e-9
    assert top + h <= image.size[1] + 1e-9


_JPEGS: dict[tuple[int, int], bytes] = {}


def _jpeg(size: tuple[int, int]) -> bytes:
    if size not in _JPEGS:
        import io

        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", size, (10, 200, 30)).save(out, "JPEG")
        _JPEGS[size] = out.getvalue()
    return _JPEGS[size]


def test_batches_can_be_torch_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    fake = type(sys)("torch")
    fake.from_numpy = lambda array: ("tensor", array)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", fake)
    for i in range(3):
        Image.new("RGB", (60, 50), (i * 50, 0, 0)).save(tmp_path / f"{i}.jpg")
    batches = list(_images.pipeline(str(tmp_path), batch_size=2, tensors=True))
    assert [(how, array.shape) for how, array in batches] == [
        ("tensor", (2, 3, 224, 224)),
        ("tensor", (1, 3, 224, 224)),
    ]


def test_tensors_without_torch_say_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2.13.0"):
        _images.pipeline(str(tmp_path), tensors=True)


def test_a_broken_image_fails_the_run_with_its_file_named(tmp_path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    for i in range(3):
        Image.new("RGB", (60, 50)).save(tmp_path / f"{i}.jpg")
    (tmp_path / "1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UnidentifiedImageError) as caught:
        list(_images.pipeline(str(tmp_path), batch_size=2))
    assert any(
        f"while loading {tmp_path / '1.jpg'}: a broken image?" in n for n in caught.value.__notes__
    )
