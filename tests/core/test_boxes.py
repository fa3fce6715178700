"""advmri.core.boxes: the fastMRI+ up/down flip, clipping, and the SSIM window box of small boxes."""

from advmri.core.boxes import Box, flip_y, ssim_box, to_array_box, to_csv_box


def test_flip_roundtrip():
    b = to_array_box(10, 30, 20, 8, (320, 320))
    assert b == Box(10, 320 - 30 - 8, 20, 8)
    assert to_csv_box(b, 320) == (10, 30, 20, 8)
    assert flip_y(flip_y(7, 5, 100), 5, 100) == 7


def test_negative_y_is_clipped():
    # negative y on the flipped image = the box runs off the bottom of the array image
    b = to_array_box(5, -4, 10, 10, (320, 320))
    assert b == Box(5, 314, 10, 6)
    assert to_array_box(5, -20, 10, 10, (320, 320)) is None


def test_ssim_box_grows_small_boxes_inside_image():
    assert ssim_box(Box(10, 10, 3, 20), (64, 64)) == Box(8, 10, 7, 20)
    assert ssim_box(Box(0, 62, 2, 2), (64, 64)) == Box(0, 57, 7, 7)
    assert ssim_box(Box(4, 4, 9, 9), (64, 64)) == Box(4, 4, 9, 9)
