"""snake images: the ImageNet-style pipeline, its crops, and the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from snake import _images


@given(st.integers(1, 2000), st.integers(1, 2000), st.integers(0, 2**32))
def test_random_resized_crops_lie_inside_the_image(width: int, height: int, seed: int) -> None:
    import random

    left, top, w, h = _images._crop_box(random.Random(seed), width, height)
    assert 0 <= left and 0 <= top and w > 0 and h > 0
    assert left + w <= width and top + h <= height


def test_decode_gives_normalized_chw_float32_the_same_for_a_seed(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "a.jpg"
    Image.new("RGB", (320, 240), (255, 0, 128)).save(path)
    data = path.read_bytes()
    a = _images.decode((3, data), seed=1)
    assert a.shape == (3, 224, 224) and a.dtype == np.float32
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
        [sys.executable, "-m", "snake._cli", "images", "--count", "12", "--batch-size", "5",
         "--stats"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("12 images of (3, 224, 224) float32 from ")
    assert lines[1].endswith("decoding in threads)") and "images/s" in lines[1]
    assert any("par_map(partial(load))" in line for line in lines)
    assert lines[-1].startswith("elapsed ")
    assert len(list((tmp_path / "snake-images-12-500x375").glob("*.jpg"))) == 12
