"""Compressed-domain algorithms (numpy/OpenCV/C; file I/O only in :mod:`.backends` and :mod:`.mpeg4`).

- :mod:`.motion`: decoder motion vectors -> dense (2, H, W) maps in pixels, accumulation back to the I-frame.
- :mod:`.residual`: motion compensation in pixel space and residuals (frame - compensated reference).
- :mod:`.encoding`: CoViAR's uint8 storage encodings of motion vectors and residuals.
- :mod:`.extract`: one decode pass over an MPEG-4 file -> every array the mv shards store.
- :mod:`.mpeg4`: re-encoding to MPEG-4 Part 2 (GOP 12, no B-frames) and the picture-type check.
- :mod:`.fused`: the C kernel computing a P-frame's arrays in one pass (same results as the definitions).
- :mod:`.backends`: decoders that yield RGB frames, picture types and motion vectors (PyAV, mv-extractor).
- :mod:`.viz`: PNG-ready visualizations of motion fields and residuals.

Sign convention (everywhere in this package and in the shards): a motion vector ``(dx, dy)`` at pixel ``p`` of
a P-frame is ``motion / motion_scale`` as FFmpeg exports it, i.e. ``src - dst``: the prediction of ``p`` is
taken at ``p + (dx, dy)`` in the reference frame. Content that moves right by ``d`` pixels per frame gives
``dx = -d``; the forward optical flow (frame t-1 -> t) and CoViAR's ``dst - src`` maps are the negation.
"""

from .encoding import decode_mv, decode_residual, encode_mv, encode_residual
from .motion import accumulate, dense_motion, mv_table
from .residual import compensate, residual

__all__ = ["dense_motion", "accumulate", "mv_table", "compensate", "residual", "encode_mv", "decode_mv",
           "encode_residual", "decode_residual"]
