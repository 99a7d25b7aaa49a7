"""Pictures of a product (no Butler, no terminal): what survives the downsampling, and the histogram's counts."""

from __future__ import annotations

import numpy as np
import pytest

from pfstui.verify.image import ProductImage
from pfstui.verify.pictures import (
    camera_pictures,
    downsample,
    histogram,
    picture,
    shrink,
)


def bias(shape=(256, 256), seed=3) -> ProductImage:
    rng = np.random.default_rng(seed)
    data = rng.normal(1000.0, 5.0, shape)
    return ProductImage(data, np.ones(shape, bool), {"all": (slice(None), slice(None))})


def test_a_hot_column_stays_visible_when_one_column_in_64_is_hot():
    image = bias()
    image.data[:, 100] += 200.0  # one column of 256 -> one in each block's 4 columns
    shown = picture(image)
    assert shown.pixels.shape == (64, 64)
    column = 100 // 4
    assert shown.pixels[:, column].min() == 255  # white from top to bottom
    others = np.delete(shown.pixels, column, axis=1)
    assert np.median(others) == pytest.approx(128, abs=20) and others.max() < 255


def test_an_isolated_hot_pixel_does_not_light_a_block():
    image = bias()
    image.data[10, 10] = 1e6
    assert picture(image).pixels.max() < 255


def test_masked_pixels_take_no_part_and_a_block_with_none_good_is_blank():
    image = bias((64, 64))
    image.data[:, 5] = 1e6  # a column masked by the pipeline: not shown as hot
    image.good[:, 5] = False
    image.good[:8, 32:] = False  # a masked corner
    small = downsample(image.data, image.good, (8, 8))
    assert np.nanmax(small) < 1100.0
    assert np.isnan(small[0, 4:]).all() and np.isfinite(small[1:]).all()
    shown = picture(image, size=(8, 8))
    assert shown.blank[-1, 4:].all() and not shown.blank[:-1].any()  # top row shown first: FITS row 0 is last


def test_a_whole_camera_offset_shows_white_in_new_minus_current():
    current = bias(seed=4)
    new = bias(seed=5)
    new.data += 40.0  # 8 sigma of the difference's noise
    pictures = camera_pictures("bias", new, current)
    assert pictures.comparison is not None and pictures.comparison.label == "new - current"
    assert np.median(pictures.comparison.pixels) == 255
    assert pictures.comparison.low < 0.0 < pictures.comparison.high
    assert camera_pictures("bias", new, None).comparison is None


def test_a_flat_is_compared_by_ratio_centred_on_one():
    current = bias(seed=6)
    current.data[:] = 1.0 + current.data / 1e5
    pictures = camera_pictures("fiberFlat", current, current)
    assert pictures.comparison.label == "new / current"
    assert (pictures.comparison.pixels == 128).all()


def test_histogram_counts_add_up_to_the_good_pixels():
    image = bias()
    image.good[:20] = False
    image.data[200, :7] = 1e5  # beyond the range: counted in the last bin
    hist = histogram(image, bins=16)
    assert hist.counts.sum() == image.good.sum()
    assert len(hist.edges) == 17 and hist.above == 7 and hist.below == 0
    assert hist.edges[0] < 1000.0 < hist.edges[-1]
    assert hist.counts[-1] >= 7


def test_histogram_of_an_image_without_good_pixels_is_empty():
    image = bias((8, 8))
    image.good[:] = False
    assert histogram(image).counts.sum() == 0


def test_shrinking_for_the_terminal_keeps_the_extremes():
    image = bias()
    image.data[:, 100] += 200.0
    shown = picture(image)  # 64 x 64, the hot column white
    small = shrink(shown, 12, 35)
    assert small.pixels.shape == (12, 35) and small.blank.shape == (12, 35)
    assert (small.pixels == 255).all(axis=0).sum() == 1  # still one whole white column, not a grey smear
    assert shrink(shown, 80, 80) is not shown and shrink(shown, 80, 80).pixels.shape == (64, 64)


def test_shrinking_keeps_a_white_column_in_a_black_amplifier():
    shown = picture(bias((64, 64)), size=(64, 64))
    shown.pixels[:] = 0
    shown.pixels[:, 30] = 255
    assert (shrink(shown, 64, 20).pixels == 255).all(axis=0).sum() == 1


def test_shrinking_by_two_keeps_a_hot_column_that_is_half_of_its_pair():
    """The demo's bias: 64 columns shown in 32, hot columns at 1, 5 and 9 (each the second of its pair)."""
    shown = picture(bias((48, 64)), size=(64, 64))
    shown.pixels[:] = 100
    shown.pixels[:, [1, 5, 9]] = 255
    assert sorted(np.flatnonzero((shrink(shown, 48, 32).pixels == 255).all(axis=0))) == [0, 2, 4]


def test_new_minus_current_is_white_no_nearer_than_the_fail_limit():
    """Two biases made from the same frames differ by almost nothing: the scale is the fail limit, not that noise."""
    current = bias(seed=7)
    new = ProductImage(current.data + 1e-6 * bias(seed=8).data, current.good, current.amps)
    new.data[:, :3] += 2.0  # under the 5 ADU fail limit of diff_mean: not white
    shown = camera_pictures("bias", new, current).comparison
    assert (shown.low, shown.high) == (-5.0, 5.0)
    assert 128 < shown.pixels[0, 0] < 255
