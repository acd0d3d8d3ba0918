"""Networks this package implements itself (kornia 0.9 has none of them): SuperPoint, SuperGlue,
SEKD and ALIKE, written from their papers with the tensor names and shapes of the authors' weight
files as the loading contract. Each ``forward`` computes dense maps only; keypoint selection and
descriptor sampling are the plain helpers of ``keypoints.py``. No module here reads or downloads
weights: ``weights/`` verifies the files and the extractors load them.
"""

from .alike import ALIKE
from .sekd import SEKD
from .superglue import SuperGlue
from .superpoint import SuperPoint

__all__ = ["ALIKE", "SEKD", "SuperGlue", "SuperPoint"]
