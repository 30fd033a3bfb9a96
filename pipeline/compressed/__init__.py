"""Compressed-domain algorithms (pure numpy/OpenCV, no file I/O except :mod:`.backends`).

- :mod:`.motion`: decoder motion vectors -> dense (2, H, W) maps in pixels, accumulation back to the I-frame.
- :mod:`.residual`: motion compensation in pixel space and residuals (frame - compensated reference).
- :mod:`.encoding`: CoViAR's uint8 storage encodings of motion vectors and residuals.
- :mod:`.resframes`: residual frames |F_i - F_i+1| (the one function the stage and the loader share).
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
