"""svcommon.mediaprobe reads a few values out of ffprobe's JSON that the file itself wrote
(tags): they are parsed strictly, never trusted to be numbers."""
from __future__ import annotations

import pytest

from svcommon.mediaprobe import _rotation


@pytest.mark.parametrize("tag, degrees", [("90", 90), ("-90", 270), ("450", 90), ("", 0), (None, 0),
                                          ("x", 0), ("²", 0), ("١٨٠", 0), ("9" * 40, 0)])
def test_rotate_tag(tag, degrees):
    assert _rotation({"tags": {"rotate": tag}}) == degrees


def test_side_data_rotation_wins():
    assert _rotation({"side_data_list": [{"rotation": -90}], "tags": {"rotate": "180"}}) == 270
