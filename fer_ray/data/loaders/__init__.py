"""Real data set loaders: each data set's own on-disk layout → manifest + RGB images.

Why one source per data set: every collection ships a different layout (CSV rows,
video-sequence folders, coded file names), and a broken input must be reported as
"this file broke this expectation". Importing this package registers every loader
in ``fer_ray.data.datasets.REGISTRY``; sources hold only the root path and options
because they are pickled into Ray tasks.
"""

from fer_ray.data.loaders import ckplus, fer2013, folder, jaffe, sfew
from fer_ray.data.loaders.ckplus import landmark_box
from fer_ray.data.loaders.fer2013 import decode_pixels, ferplus_majority
from fer_ray.data.loaders.files import CANONICAL, read_image

__all__ = [
    "CANONICAL",
    "ckplus",
    "decode_pixels",
    "fer2013",
    "ferplus_majority",
    "folder",
    "jaffe",
    "landmark_box",
    "read_image",
    "sfew",
]
